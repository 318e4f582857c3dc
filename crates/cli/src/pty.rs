//! The pseudo-terminal that `spikeloop device` and `spikeloop relay` offer a host, and the
//! optional fixed name (`--link`) it is reachable under.
//!
//! The one idea: such a process keeps only the controller side of the terminal, so a host
//! closing its side shows up as reads failing with EIO until the next host opens it, and the
//! process serves hosts one after another like a board that stays powered. A link is made only
//! where nothing of value is, and removed again on every way out (return, Ctrl-C, SIGTERM,
//! SIGHUP), so it never outlives the process to point at another program's terminal.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serialport::{SerialPort, TTYPort};

/// How long to wait before looking again when no host has the terminal open.
pub const IDLE_POLL: Duration = Duration::from_millis(10);

/// An open pseudo-terminal: the controller side, the path a host opens, and the link to it.
#[derive(Debug)]
pub struct Terminal {
    /// The controller side.
    pub master: TTYPort,
    /// The terminal a host opens.
    pub path: PathBuf,
    link: Option<PathBuf>,
}

impl Terminal {
    /// Opens a pseudo-terminal in raw mode and, with `link`, links `link` to it. On Ctrl-C,
    /// SIGTERM or SIGHUP, `on_exit` runs, the link is removed and the process exits.
    pub fn open(
        link: Option<&Path>,
        on_exit: impl Fn() + Send + 'static,
    ) -> anyhow::Result<Terminal> {
        // The pair comes in raw mode: no echo, no line editing, no XON/XOFF (0x11 and 0x13
        // occur in frames), so that even a host that does not set it up sees the bytes
        // unchanged.
        let (mut master, terminal) = TTYPort::pair().context("could not open a pseudo-terminal")?;
        let path = PathBuf::from(
            terminal
                .name()
                .context("could not name the pseudo-terminal")?,
        );
        // Only the controller side is kept: a host closing the terminal is then visible, and
        // the terminal's exclusive-access flag is cleared with the host's last descriptor.
        drop(terminal);
        // A read waits this long for a host's bytes before it reports that none came.
        master
            .set_timeout(Duration::from_secs(1))
            .context("could not set the terminal's read timeout")?;
        if let Some(link) = link {
            make_link(link, &path)?;
        }
        let (exit_link, target) = (link.map(Path::to_path_buf), path.clone());
        ctrlc::set_handler(move || {
            on_exit();
            if let Some(link) = &exit_link {
                remove_link(link, &target);
            }
            std::process::exit(130);
        })
        .context("could not install the handler for Ctrl-C and SIGTERM")?;
        Ok(Terminal {
            master,
            path,
            link: link.map(Path::to_path_buf),
        })
    }

    /// A second handle on the controller side (one thread reads, another writes).
    pub fn controller(&self) -> anyhow::Result<TTYPort> {
        self.master
            .try_clone_native()
            .context("could not duplicate the terminal")
    }

    /// The name to give hosts: the link if there is one, else the terminal.
    pub fn name(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.path)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            remove_link(link, &self.path);
        }
    }
}

/// What a read from the controller side found.
pub enum HostRead {
    /// Bytes from the host.
    Data(usize),
    /// No host has the terminal open (or it sent nothing yet).
    NoHost,
}

/// Reads what the host sent. No host holding the terminal (the controller side polls as hung
/// up: a broken pipe), an empty read and a read that timed out are [`HostRead::NoHost`];
/// interrupted reads are retried; anything else is an error.
pub fn read_host(master: &mut TTYPort, buf: &mut [u8]) -> anyhow::Result<HostRead> {
    loop {
        match master.read(buf) {
            Ok(0) => return Ok(HostRead::NoHost),
            Ok(n) => return Ok(HostRead::Data(n)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::TimedOut) => {
                return Ok(HostRead::NoHost);
            }
            Err(e) => return Err(e).context("could not read from the terminal"),
        }
    }
}

/// Where the symbolic link at `link` points, if it is one.
fn link_target(link: &Path) -> Option<PathBuf> {
    let meta = link.symlink_metadata().ok()?;
    meta.file_type()
        .is_symlink()
        .then(|| std::fs::read_link(link).ok())
        .flatten()
}

/// Links `link` to the terminal `path`. An existing `link` is replaced only when it is a
/// symbolic link into `/dev/pts/` whose terminal no longer exists (left by a process that was
/// killed); a live terminal, a regular file or any other link is refused, naming what it is.
fn make_link(link: &Path, path: &Path) -> anyhow::Result<()> {
    if link.symlink_metadata().is_ok() {
        let Some(target) = link_target(link) else {
            bail!(
                "--link {}: the path exists and is not a symbolic link; refusing to replace it (choose another --link path)",
                link.display()
            );
        };
        if !target.starts_with("/dev/pts/") {
            bail!(
                "--link {}: it is a symbolic link to {}, not to a pseudo-terminal; refusing to replace it (choose another --link path)",
                link.display(),
                target.display()
            );
        }
        if target.exists() {
            bail!(
                "--link {}: it links to {}, a terminal that is still open (another `spikeloop device` or `relay`, or a program that took the number of a stopped one); stop that process, or remove the link (rm {}) if it is stale",
                link.display(),
                target.display(),
                link.display()
            );
        }
        std::fs::remove_file(link)
            .with_context(|| format!("could not replace the stale link {}", link.display()))?;
    }
    std::os::unix::fs::symlink(path, link)
        .with_context(|| format!("could not link {} to {}", link.display(), path.display()))
}

/// Removes `link` if it still points at `target` (nobody replaced it meanwhile).
fn remove_link(link: &Path, target: &Path) {
    if link_target(link).as_deref() == Some(target) {
        let _ = std::fs::remove_file(link);
    }
}

/// How long one read or write on the controller side waits for the line before it lets the
/// serve loop run (its timers, its hang-up handling).
const LINE_WAIT: Duration = Duration::from_millis(50);

/// The controller side as the virtual device's byte link.
///
/// Reads and writes wait in the kernel (`poll`), as the relay's do, rather than on the async
/// runtime's readiness: a pseudo-terminal whose host has once hung up stays "closed" in that
/// readiness for good, and every read then returned at once with nothing, which kept a core
/// busy for as long as a host held the terminal without sending.
pub struct Controller(TTYPort);

impl Controller {
    /// The link over `terminal`'s controller side.
    pub fn new(terminal: &Terminal) -> anyhow::Result<Controller> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        use std::os::fd::AsRawFd;
        let mut port = terminal.controller()?;
        port.set_timeout(LINE_WAIT)
            .context("could not set the terminal's timeout")?;
        // A write then takes what fits and never blocks: a terminal nobody reads reports room
        // it does not take, and a blocking write would wait for it for good.
        let fd = port.as_raw_fd();
        fcntl(fd, FcntlArg::F_GETFL)
            .and_then(|flags| {
                let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
                fcntl(fd, FcntlArg::F_SETFL(flags))
            })
            .context("could not make the terminal non-blocking")?;
        Ok(Controller(port))
    }
}

/// A read or write of the line as the serve loop sees it: a wait that ended without the line
/// being ready is pending, with the task woken again at once, so the loop polls on (each poll
/// waits up to [`LINE_WAIT`] in the kernel).
fn on_line<T>(
    result: std::io::Result<T>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<std::io::Result<T>> {
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
        done => std::task::Poll::Ready(done),
    }
}

impl tokio::io::AsyncRead for Controller {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let read = self.0.read(buf.initialize_unfilled());
        on_line(read, cx).map_ok(|n| buf.advance(n))
    }
}

impl tokio::io::AsyncWrite for Controller {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        on_line(std::io::Write::write(&mut self.0, buf), cx)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // Written bytes are in the terminal's buffer already; there is no line to drain.
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl spikeloop_transport::link::Link for Controller {
    fn discard_input(&mut self) -> std::io::Result<()> {
        self.0
            .clear(serialport::ClearBuffer::Input)
            .map_err(std::io::Error::from)
    }

    fn discard_output(&mut self) -> std::io::Result<()> {
        self.0
            .clear(serialport::ClearBuffer::Output)
            .map_err(std::io::Error::from)
    }
}
