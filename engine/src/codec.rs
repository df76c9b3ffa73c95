//! Serde helpers for protobuf messages inside serde structs.
//!
//! `temporalio-protos` messages derive serde in a JSON-oriented way that binary codecs cannot
//! decode, so inside replicated commands and persisted state every protobuf message is carried
//! as its protobuf encoding — the canonical one ([`crate::canonical`]), so that equal values
//! give equal bytes on every replica. Use `#[serde(with = "crate::codec::proto")]` on a message field and
//! `#[serde(with = "crate::codec::proto_opt")]` / `proto_vec` on optional and repeated ones.

/// A protobuf message as its encoded bytes.
pub mod proto {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<M: prost::Message + prost::Name, S: Serializer>(
        msg: &M,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&crate::canonical::encode(msg))
    }

    pub fn deserialize<'de, M: prost::Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<M, D::Error> {
        let bytes: Vec<u8> = serde_bytes_vec(d)?;
        M::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
    }

    pub(crate) fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Vec::<u8>::deserialize(d)
    }
}

/// An optional protobuf message.
pub mod proto_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<M: prost::Message + prost::Name, S: Serializer>(
        msg: &Option<M>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        msg.as_ref().map(crate::canonical::encode).serialize(s)
    }

    pub fn deserialize<'de, M: prost::Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<M>, D::Error> {
        match Option::<Vec<u8>>::deserialize(d)? {
            None => Ok(None),
            Some(bytes) => M::decode(bytes.as_slice())
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A vector of protobuf messages.
pub mod proto_vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<M: prost::Message + prost::Name, S: Serializer>(
        msgs: &[M],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let encoded: Vec<Vec<u8>> = msgs.iter().map(crate::canonical::encode).collect();
        encoded.serialize(s)
    }

    pub fn deserialize<'de, M: prost::Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<M>, D::Error> {
        Vec::<Vec<u8>>::deserialize(d)?
            .iter()
            .map(|b| M::decode(b.as_slice()).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// The versioned binary encoding of replicated commands and persisted records: one version byte,
/// then bincode 2 (standard config) of the serde value. A codec change bumps the version and
/// becomes a migration, not a surprise.
pub mod versioned {
    use serde::{Serialize, de::DeserializeOwned};

    pub const VERSION: u8 = 1;

    #[derive(Debug, thiserror::Error)]
    pub enum CodecError {
        #[error("empty record")]
        Empty,
        #[error("unknown record encoding version {0}")]
        UnknownVersion(u8),
        #[error("decode: {0}")]
        Decode(String),
        #[error("encode: {0}")]
        Encode(String),
    }

    pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = vec![VERSION];
        let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
        if version != VERSION {
            return Err(CodecError::UnknownVersion(version));
        }
        let (value, _) = bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        Ok(value)
    }
}
