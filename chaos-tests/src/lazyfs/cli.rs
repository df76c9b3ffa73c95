//! `perdura-chaos lazyfs …`: `mount` serves a lazyfs until SIGTERM/SIGINT (then unmounts);
//! `clear-cache`, `sync` and `held` talk to a mounted one through its control socket and print
//! the JSON counts.

use super::control::{self, ControlCommand};
use super::{LazyFsError, MountedLazyFs};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct LazyFsArgs {
    #[command(subcommand)]
    pub command: LazyFsCommand,
}

#[derive(Subcommand, Debug)]
pub enum LazyFsCommand {
    /// Mount a lazyfs of --backing on --mount and serve it until SIGTERM or SIGINT.
    Mount(MountArgs),
    /// Drop every unsynced write (a power loss).
    ClearCache(ControlArgs),
    /// Write every unsynced write to the backing directory.
    Sync(ControlArgs),
    /// Print what is held unsynced.
    Held(ControlArgs),
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// The directory that holds the files (what survives).
    #[arg(long)]
    pub backing: PathBuf,
    /// Where to mount the lazyfs (an existing empty directory).
    #[arg(long)]
    pub mount: PathBuf,
    /// The control socket to create.
    #[arg(long)]
    pub control: PathBuf,
}

#[derive(Args, Debug)]
pub struct ControlArgs {
    /// The control socket of the mounted lazyfs.
    #[arg(long)]
    pub control: PathBuf,
}

pub fn main(args: LazyFsArgs) -> ExitCode {
    let result = match args.command {
        LazyFsCommand::Mount(args) => serve(&args),
        LazyFsCommand::ClearCache(args) => print(&args, ControlCommand::ClearCache),
        LazyFsCommand::Sync(args) => print(&args, ControlCommand::Sync),
        LazyFsCommand::Held(args) => print(&args, ControlCommand::Held),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perdura-chaos lazyfs: {e}");
            ExitCode::from(2)
        }
    }
}

fn print(args: &ControlArgs, command: ControlCommand) -> Result<(), LazyFsError> {
    let counts = control::send(&args.control, command)?;
    println!(
        "{}",
        serde_json::to_string(&counts).unwrap_or_else(|e| e.to_string())
    );
    Ok(())
}

fn serve(args: &MountArgs) -> Result<(), LazyFsError> {
    let mounted = MountedLazyFs::mount(&args.backing, &args.mount, Some(&args.control))?;
    println!(
        "lazyfs: {} mounted on {}, control {}",
        args.backing.display(),
        args.mount.display(),
        args.control.display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| LazyFsError::Control {
            path: args.control.clone(),
            source,
        })?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|source| LazyFsError::Control {
                path: args.control.clone(),
                source,
            })?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if mounted.has_ended() {
                        break;
                    }
                }
            }
        }
        Ok::<(), LazyFsError>(())
    })?;
    mounted.unmount()
}
