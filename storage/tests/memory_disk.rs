//! The simulation's in-memory disk: synced writes survive a crash, unsynced ones do not, old
//! handles die with their process, and it reads like RocksDB.

use perdura_storage::{
    Batch, Cf, Db, LogWriter, MemoryDisk, MemoryDisks, StorageBackend, StorageError,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn put(key: &[u8], value: &[u8]) -> Batch {
    let mut batch = Batch::new();
    batch.put(Cf::State, key.to_vec(), value.to_vec());
    batch
}

fn open(disk: &Arc<MemoryDisk>) -> Db {
    Db::open_memory("/sim/n1", disk.clone())
}

#[test]
fn an_unsynced_write_is_read_back_but_lost_by_a_crash() {
    let disk = MemoryDisk::new();
    let db = open(&disk);
    db.write(&put(b"a", b"1"), false).expect("write");
    assert_eq!(db.get(Cf::State, b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(disk.unsynced_ops(), 1);
    assert_eq!(disk.crash().lost_ops, 1);
    assert_eq!(open(&disk).get(Cf::State, b"a").expect("get"), None);
}

#[test]
fn a_synced_write_makes_every_earlier_write_durable() {
    let disk = MemoryDisk::new();
    let db = open(&disk);
    db.write(&put(b"a", b"1"), false).expect("write");
    db.write(&put(b"b", b"2"), true).expect("write");
    db.write(&put(b"c", b"3"), false).expect("write");
    disk.crash();
    let db = open(&disk);
    assert_eq!(db.get(Cf::State, b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(db.get(Cf::State, b"b").expect("get"), Some(b"2".to_vec()));
    assert_eq!(db.get(Cf::State, b"c").expect("get"), None);
}

#[test]
fn sync_wal_makes_every_earlier_write_durable() {
    let disk = MemoryDisk::new();
    let db = open(&disk);
    db.write(&put(b"a", b"1"), false).expect("write");
    let mut delete = Batch::new();
    delete.delete(Cf::State, b"a".to_vec());
    db.write(&put(b"b", b"2"), false).expect("write");
    db.write(&delete, false).expect("write");
    db.sync_wal().expect("sync");
    assert_eq!(disk.unsynced_ops(), 0);
    disk.crash();
    let db = open(&disk);
    assert_eq!(db.get(Cf::State, b"a").expect("get"), None);
    assert_eq!(db.get(Cf::State, b"b").expect("get"), Some(b"2".to_vec()));
}

#[test]
fn a_handle_opened_before_a_crash_can_neither_read_nor_write() {
    let disk = MemoryDisk::new();
    let old = open(&disk);
    old.write(&put(b"a", b"1"), true).expect("write");
    disk.crash();
    assert!(matches!(
        old.get(Cf::State, b"a"),
        Err(StorageError::Detached)
    ));
    assert!(matches!(
        old.write(&put(b"b", b"2"), true),
        Err(StorageError::Detached)
    ));
    assert!(matches!(old.sync_wal(), Err(StorageError::Detached)));
    assert_eq!(
        open(&disk).get(Cf::State, b"a").expect("get"),
        Some(b"1".to_vec())
    );
}

#[test]
fn a_restarted_node_finds_its_disk_by_data_dir() {
    let disks = MemoryDisks::new();
    let backend = StorageBackend::Memory(disks.clone());
    let db = backend.open("/sim/n1/rocksdb").expect("open");
    assert!(db.is_memory());
    db.write(&put(b"a", b"1"), true).expect("write");
    db.write(&put(b"b", b"2"), false).expect("write");
    drop(db);
    disks.disk(Path::new("/sim/n1/rocksdb")).crash();
    let again = backend.open("/sim/n1/rocksdb").expect("reopen");
    assert_eq!(
        again.get(Cf::State, b"a").expect("get"),
        Some(b"1".to_vec())
    );
    assert_eq!(again.get(Cf::State, b"b").expect("get"), None);
    let other = backend.open("/sim/n2/rocksdb").expect("open n2");
    assert_eq!(other.get(Cf::State, b"a").expect("get"), None);
}

#[test]
fn a_disk_that_acks_before_sync_loses_acknowledged_writes() {
    let disk = MemoryDisk::new();
    disk.set_ack_before_sync(true);
    let db = open(&disk);
    db.write(&put(b"a", b"1"), true).expect("write");
    db.sync_wal().expect("sync");
    disk.crash();
    assert_eq!(open(&disk).get(Cf::State, b"a").expect("get"), None);
}

#[test]
fn the_inline_log_writer_completes_before_submit_returns_and_is_durable() {
    let disk = MemoryDisk::new();
    let db = Arc::new(open(&disk));
    let writer = LogWriter::start(db.clone());
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    writer
        .submit(
            put(b"a", b"1"),
            1,
            Box::new(move |r| {
                r.expect("write succeeds");
                flag.store(true, Ordering::SeqCst);
            }),
        )
        .expect("submit");
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(writer.stats().counts().entries, 1);
    disk.crash();
    assert_eq!(
        open(&disk).get(Cf::State, b"a").expect("get"),
        Some(b"1".to_vec())
    );
    writer.shutdown();
    // The writer lets go of the database, so the node's shutdown can close it.
    assert_eq!(Arc::strong_count(&db), 1);
    assert!(matches!(
        writer.submit(Batch::new(), 0, Box::new(|_| panic!("must not run"))),
        Err(StorageError::WriterClosed)
    ));
}

/// The same writes through both backends read back the same: point reads, scans, prefix scans,
/// the last key of a range, deletes and range deletes.
#[test]
fn the_memory_backend_reads_like_rocksdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks = Db::open(dir.path()).expect("open rocksdb");
    let memory = open(&MemoryDisk::new());
    let mut batches = Vec::new();
    for i in 0u8..40 {
        let mut batch = Batch::new();
        batch.put(Cf::RaftLog, vec![1, i], vec![i]);
        batch.put(Cf::State, vec![i % 4, i], vec![i, i]);
        if i % 7 == 6 {
            batch.delete(Cf::RaftLog, vec![1, i - 3]);
        }
        if i == 30 {
            batch.delete_range(Cf::State, vec![2, 5], vec![2, 20]);
            batch.delete_range(Cf::State, vec![3, 9], vec![3, 9]);
        }
        batches.push(batch);
    }
    for (n, batch) in batches.iter().enumerate() {
        rocks.write(batch, n % 3 == 0).expect("rocks write");
        memory.write(batch, n % 3 == 0).expect("memory write");
    }
    let collect = |db: &Db, cf: Cf, start: &[u8], end: Option<&[u8]>| {
        db.scan(cf, start, end)
            .expect("scan")
            .collect::<Result<Vec<_>, _>>()
            .expect("scan items")
    };
    for cf in [Cf::RaftLog, Cf::State] {
        for (start, end) in [
            (&[][..], None),
            (&[1][..], Some(&[2][..])),
            (&[2, 3][..], Some(&[2, 30][..])),
            (&[3][..], Some(&[3][..])),
        ] {
            assert_eq!(
                collect(&rocks, cf, start, end),
                collect(&memory, cf, start, end),
                "{cf:?} {start:?}..{end:?}"
            );
            assert_eq!(
                rocks.last_in_range(cf, start, end).expect("last"),
                memory.last_in_range(cf, start, end).expect("last"),
                "{cf:?} {start:?}..{end:?}"
            );
        }
        let prefix = |db: &Db| {
            db.scan_prefix(cf, &[2])
                .expect("prefix")
                .collect::<Result<Vec<_>, _>>()
                .expect("items")
        };
        assert_eq!(prefix(&rocks), prefix(&memory));
    }
    assert_eq!(
        rocks.get(Cf::RaftLog, &[1, 3]).expect("get"),
        memory.get(Cf::RaftLog, &[1, 3]).expect("get")
    );
}
