//! Lines from a service's output pipes: the splitter (`LineBuf`: lossy UTF-8, long lines in chunks) and the async stream over a tokio pipe (`LineStream`).

use std::fmt;

use tokio::net::unix::pipe;

use crate::process::{MAX_LINE, StreamError, StreamKind};

/// Async lines from one of a service's output pipes.
///
/// Lines are decoded as lossy UTF-8, without the trailing `\n` (and `\r`); a final line
/// without a newline is still yielded; lines longer than [`MAX_LINE`] come out in chunks.
pub struct LineStream {
    rx: pipe::Receiver,
    lines: LineBuf,
    pid: u32,
    stream: StreamKind,
}

impl fmt::Debug for LineStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineStream")
            .field("pid", &self.pid)
            .field("stream", &self.stream)
            .field("buffered", &(self.lines.buf.len() - self.lines.start))
            .field("eof", &self.lines.eof)
            .finish()
    }
}

impl LineStream {
    pub(crate) fn new(rx: pipe::Receiver, pid: u32, stream: StreamKind) -> Self {
        Self {
            rx,
            lines: LineBuf::default(),
            pid,
            stream,
        }
    }

    /// Which stream this is.
    pub fn kind(&self) -> StreamKind {
        self.stream
    }

    /// Whether the line [`LineStream::next_line`] returned last was a [`MAX_LINE`] chunk
    /// of a longer line, which the next one continues (the redactor masks across it).
    pub fn was_cut(&self) -> bool {
        self.lines.cut
    }

    /// The next line, or `None` once the pipe is closed and everything was yielded (every
    /// holder of the write end, including the service's children, has closed it).
    ///
    /// Cancel-safe: if the future is dropped no data is lost (bytes read so far stay in
    /// the buffer), so it can be used in `tokio::select!`.
    pub async fn next_line(&mut self) -> Result<Option<String>, StreamError> {
        loop {
            if let Some(line) = self.lines.take_line() {
                return Ok(Some(line));
            }
            if self.lines.eof {
                return Ok(None);
            }
            self.lines.before_read();
            let read = self.rx.readable().await.and_then(|()| {
                self.lines.buf.reserve(LineBuf::READ);
                self.rx.try_read_buf(&mut self.lines.buf)
            });
            match read {
                Ok(0) => self.lines.eof = true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(source) => {
                    return Err(StreamError {
                        pid: self.pid,
                        stream: self.stream,
                        source,
                    });
                }
            }
        }
    }
}

/// Bytes read from a pipe, cut into lines: lossy UTF-8, without the trailing `\n` (and
/// `\r`); a final line without a newline is still yielded once `eof` is set; lines longer
/// than [`MAX_LINE`] come out in chunks.
#[derive(Debug, Default)]
pub struct LineBuf {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    start: usize,
    /// Unconsumed bytes before this offset are known to hold no newline.
    scanned: usize,
    /// The writers have all closed the pipe (a read returned 0).
    pub eof: bool,
    /// The last line taken was cut at [`MAX_LINE`]: the next one continues it.
    pub cut: bool,
}

impl LineBuf {
    /// Bytes made room for before each read.
    const READ: usize = 2048;

    /// Drops consumed bytes before a read; with nothing pending the buffer is freed, so
    /// 1,000 quiet services keep no read buffers (2 streams each): it comes back, small,
    /// when there is something to read, and a chatty one grows it as needed.
    fn before_read(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }

    /// Frees the buffer when everything in it has been taken: a quiet service keeps no
    /// read buffer between its bursts of output.
    pub fn release_if_empty(&mut self) {
        if self.start == self.buf.len() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }

    /// One `read(2)` from `fd` (nonblocking or not) into the buffer: the bytes read, 0 at
    /// end of file (which sets `eof`).
    pub fn read_from(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<usize> {
        self.before_read();
        self.buf.reserve(Self::READ);
        let len = self.buf.len();
        let spare = self.buf.capacity() - len;
        // SAFETY: read(2) writes at most `spare` bytes into the vector's spare capacity,
        // and the length is raised only by what it reports written.
        #[allow(unsafe_code)]
        let n = unsafe {
            nix::libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                self.buf.as_mut_ptr().add(len).cast(),
                spare,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        // SAFETY: the kernel initialised these `n` bytes.
        #[allow(unsafe_code)]
        unsafe {
            self.buf.set_len(len + n);
        }
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// The next complete line (or chunk, or final unterminated line at end of file).
    pub fn take_line(&mut self) -> Option<String> {
        self.cut = false;
        let pending = &self.buf[self.scanned..];
        let newline = pending.iter().position(|&b| b == b'\n');
        match newline {
            Some(pos) if self.scanned + pos - self.start <= MAX_LINE => {
                let end = self.scanned + pos;
                let line = decode(&self.buf[self.start..end]);
                self.start = end + 1;
                self.scanned = self.start;
                return Some(line);
            }
            Some(pos) => self.scanned += pos,
            None => self.scanned = self.buf.len(),
        }
        let avail = self.buf.len() - self.start;
        if avail > MAX_LINE {
            // Cut at a UTF-8 character boundary when one is within reach, so the chunks
            // decode cleanly.
            let mut cut = self.start + MAX_LINE;
            while cut > self.start + MAX_LINE - 3 && (self.buf[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            let line = String::from_utf8_lossy(&self.buf[self.start..cut]).into_owned();
            self.start = cut;
            self.scanned = cut;
            self.cut = true;
            return Some(line);
        }
        if self.eof && avail > 0 {
            let line = decode(&self.buf[self.start..]);
            self.start = self.buf.len();
            self.scanned = self.start;
            return Some(line);
        }
        None
    }
}

fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}
