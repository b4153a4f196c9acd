//! The Unix sockets QEMU's chardevs connect to (the console and the host link): bound before QEMU starts.

use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// A socket QEMU connects a `-chardev socket,path=...` to, as a client. It is bound before QEMU
/// starts, so QEMU's connect succeeds at once; `pith` accepts the connection when it gets to it.
#[derive(Debug)]
pub struct ChardevListener {
    listener: UnixListener,
}

impl ChardevListener {
    /// Binds the socket at `path` (which must not exist yet).
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener })
    }

    /// QEMU's connection, if it has connected; never waits. The stream returned blocks.
    pub fn try_accept(&self) -> std::io::Result<Option<UnixStream>> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                Ok(Some(stream))
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_connected_before_the_accept_is_accepted_later() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("x.sock");
        let listener = ChardevListener::bind(&path).expect("bind");
        assert!(listener.try_accept().expect("accept").is_none());
        let _client = UnixStream::connect(&path).expect("connect");
        let accepted = listener.try_accept().expect("accept");
        assert!(accepted.is_some());
        assert!(ChardevListener::bind(&path).is_err(), "the path is taken");
    }
}
