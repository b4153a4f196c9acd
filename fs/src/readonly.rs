//! A filesystem mounted read-only (MS_RDONLY): every change is EROFS, everything else goes to
//! the filesystem underneath. `Vfs::make_read_only` puts a mount behind it, as a manifest's
//! `[image] writable = false` asks for `/`.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::node::{
    Changes, Creation, DirEntry, Error, FileSystem, FileType, FsStats, Ino, Metadata, NewNode,
    RenameMode, Timestamp,
};

/// `inner`, read-only.
pub struct ReadOnly {
    pub inner: Box<dyn FileSystem + Send>,
}

impl FileSystem for ReadOnly {
    fn root(&self) -> Ino {
        self.inner.root()
    }
    fn metadata(&self, ino: Ino) -> Result<Metadata, Error> {
        self.inner.metadata(ino)
    }
    fn kind(&self, ino: Ino) -> Result<FileType, Error> {
        self.inner.kind(ino)
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Error> {
        self.inner.lookup(dir, name)
    }
    fn create(&mut self, _: Ino, _: &[u8], _: NewNode, _: Creation) -> Result<Ino, Error> {
        Err(Error::ReadOnly)
    }
    fn link(&mut self, _: Ino, _: &[u8], _: Ino, _: Timestamp) -> Result<(), Error> {
        Err(Error::ReadOnly)
    }
    fn unlink(&mut self, _: Ino, _: &[u8], _: Timestamp) -> Result<(), Error> {
        Err(Error::ReadOnly)
    }
    fn rmdir(&mut self, _: Ino, _: &[u8], _: Timestamp) -> Result<(), Error> {
        Err(Error::ReadOnly)
    }
    fn rename(
        &mut self,
        _: Ino,
        _: &[u8],
        _: Ino,
        _: &[u8],
        _: RenameMode,
        _: Timestamp,
    ) -> Result<(), Error> {
        Err(Error::ReadOnly)
    }
    fn read(&mut self, ino: Ino, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        self.inner.read(ino, offset, buffer)
    }
    fn write(&mut self, _: Ino, _: u64, _: &[u8], _: Timestamp) -> Result<usize, Error> {
        Err(Error::ReadOnly)
    }
    fn truncate(&mut self, _: Ino, _: u64, _: Timestamp) -> Result<(), Error> {
        Err(Error::ReadOnly)
    }
    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Error> {
        self.inner.read_link(ino)
    }
    fn read_dir(&self, dir: Ino, position: u64) -> Result<Option<(DirEntry, u64)>, Error> {
        self.inner.read_dir(dir, position)
    }
    fn set_attributes(&mut self, _: Ino, _: Changes, _: Timestamp) -> Result<(), Error> {
        Err(Error::ReadOnly)
    }
    fn sync(&mut self, ino: Option<Ino>) -> Result<(), Error> {
        self.inner.sync(ino)
    }
    fn shutdown(&mut self) -> Result<(), Error> {
        self.inner.shutdown()
    }
    fn unmount(&mut self) -> Result<(), Error> {
        self.inner.unmount()
    }
    fn stats(&self) -> FsStats {
        self.inner.stats()
    }
    fn seek_data(&self, ino: Ino, offset: u64, hole: bool) -> Result<Option<u64>, Error> {
        self.inner.seek_data(ino, offset, hole)
    }
    fn open(&mut self, ino: Ino) {
        self.inner.open(ino)
    }
    fn close(&mut self, ino: Ino) {
        self.inner.close(ino)
    }
    fn read_only(&self) -> bool {
        true
    }
    fn borrowed_pages(&self, ino: Ino, offset: u64, len: u64) -> Option<&'static [u8]> {
        self.inner.borrowed_pages(ino, offset, len)
    }
}
