//! The control socket of a mounted lazyfs: a Unix stream socket taking one command per
//! connection (`clear-cache`, `sync`, `held`, one line) and answering one JSON line
//! ([`ControlReply`]). The harness talks to it through [`send`]; a person through
//! `perdura-chaos lazyfs clear-cache --control C`.
//!
//! Invariant: `clear-cache` answers only after every overlay is dropped and the kernel's page
//! and attribute caches of those files are invalidated, so the next reader sees the backing
//! files alone.

use super::LazyFsError;
use super::cache::{Cache, CacheCounts};
use fuser::{INodeNo, Notifier};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A command of the control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// Drop every unsynced byte: what a power loss does.
    ClearCache,
    /// Write every unsynced byte to the backing files.
    Sync,
    /// Report what is held unsynced.
    Held,
}

impl ControlCommand {
    pub fn word(self) -> &'static str {
        match self {
            ControlCommand::ClearCache => "clear-cache",
            ControlCommand::Sync => "sync",
            ControlCommand::Held => "held",
        }
    }

    fn parse(word: &str) -> Option<ControlCommand> {
        [
            ControlCommand::ClearCache,
            ControlCommand::Sync,
            ControlCommand::Held,
        ]
        .into_iter()
        .find(|c| c.word() == word.trim())
    }
}

/// The answer to a command: what it dropped, wrote or found, or why it failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControlReply {
    pub counts: CacheCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends `command` to the lazyfs whose control socket is `socket`; its counts.
pub fn send(socket: &Path, command: ControlCommand) -> Result<CacheCounts, LazyFsError> {
    let control = |source| LazyFsError::Control {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(control)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(control)?;
    writeln!(stream, "{}", command.word()).map_err(control)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(control)?;
    let reply: ControlReply = serde_json::from_str(&line).map_err(|e| LazyFsError::Reply {
        path: socket.to_owned(),
        why: format!("{e}: {line:?}"),
    })?;
    match reply.error {
        None => Ok(reply.counts),
        Some(why) => Err(LazyFsError::Reply {
            path: socket.to_owned(),
            why,
        }),
    }
}

/// The serving side: a thread accepting connections until dropped.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    pub fn start(
        path: &Path,
        cache: Arc<Cache>,
        notifier: Notifier,
    ) -> Result<ControlServer, LazyFsError> {
        let control = |source| LazyFsError::Control {
            path: path.to_owned(),
            source,
        };
        // A socket file left by a killed lazyfs would make bind fail.
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(control)?;
        listener.set_nonblocking(true).map_err(control)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lazyfs-control".into())
            .spawn(move || serve(listener, &cache, &notifier, &thread_stop))
            .map_err(control)?;
        Ok(ControlServer {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: UnixListener, cache: &Cache, notifier: &Notifier, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, cache, notifier),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn answer(stream: UnixStream, cache: &Cache, notifier: &Notifier) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let reply = match ControlCommand::parse(&line) {
        Some(command) => execute(command, cache, notifier),
        None => ControlReply {
            counts: CacheCounts::default(),
            error: Some(format!("unknown command {:?}", line.trim())),
        },
    };
    if let Ok(json) = serde_json::to_string(&reply) {
        let mut stream = &stream;
        let _ = writeln!(stream, "{json}");
    }
}

/// Runs one command (also the in-process path of [`super::MountedLazyFs`]).
pub fn execute(command: ControlCommand, cache: &Cache, notifier: &Notifier) -> ControlReply {
    match command {
        ControlCommand::ClearCache => {
            let (counts, touched) = cache.clear();
            for ino in touched {
                // The kernel may not know the inode any more (ENOENT): nothing cached then.
                let _ = notifier.inval_inode(INodeNo(ino), 0, 0);
            }
            ControlReply {
                counts,
                error: None,
            }
        }
        ControlCommand::Sync => match cache.sync_all() {
            Ok(counts) => ControlReply {
                counts,
                error: None,
            },
            Err(e) => ControlReply {
                counts: CacheCounts::default(),
                error: Some(e.to_string()),
            },
        },
        ControlCommand::Held => ControlReply {
            counts: cache.held(),
            error: None,
        },
    }
}
