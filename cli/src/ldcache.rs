//! The host's `/etc/ld.so.cache`, as glibc's ld.so reads it: a table from a library's soname
//! to the path `ldconfig` found it at. Only the format glibc 2.32 and later write (the "new"
//! format, `glibc-ld.so.cache1.1`, alone or after an old-format table) is read; the layout is
//! glibc's sysdeps/generic/dl-cache.h.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `CACHEMAGIC_NEW` followed by `CACHE_VERSION`.
const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// `struct cache_file_new` up to its entries: magic and version (20 bytes), nlibs,
/// len_strings, flags and padding, extension_offset, three unused words.
const HEADER_SIZE: usize = 48;
/// `struct file_entry_new`: flags, key, value, osversion, hwcap.
const ENTRY_SIZE: usize = 24;
/// `FLAG_ELF_LIBC6` in `FLAG_TYPE_MASK`, and `FLAG_X8664_LIB64` in `FLAG_REQUIREMASK`: a
/// 64-bit x86 glibc library.
const FLAG_TYPE_MASK: u32 = 0x00ff;
const FLAG_ELF_LIBC6: u32 = 0x0003;
const FLAG_REQUIRE_MASK: u32 = 0xff00;
const FLAG_X8664_LIB64: u32 = 0x0300;

/// What the cache maps: soname to path, for x86_64 libraries outside glibc-hwcaps
/// subdirectories (those are picked by the CPU ld.so runs on; the baseline copy runs on any).
#[derive(Debug, Default)]
pub struct LdCache {
    paths: HashMap<String, PathBuf>,
}

impl LdCache {
    /// Reads the cache at `path`. A missing or unreadable file is an empty cache, as for
    /// ld.so, which then searches the default directories.
    pub fn read(path: &Path) -> LdCache {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| LdCache::parse(&bytes))
            .unwrap_or_default()
    }

    /// Parses a cache file's bytes; None if they hold no new-format table.
    pub fn parse(bytes: &[u8]) -> Option<LdCache> {
        let start = bytes
            .windows(MAGIC.len())
            .position(|window| window == MAGIC)?;
        let table = &bytes[start..];
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(table.get(at..at + 4)?.try_into().ok()?))
        };
        let count = word(20)? as usize;
        let mut paths = HashMap::new();
        for index in 0..count {
            let at = HEADER_SIZE + index * ENTRY_SIZE;
            let (flags, key, value) = (word(at)?, word(at + 4)?, word(at + 8)?);
            let hwcap = u64::from(word(at + 16)?) | (u64::from(word(at + 20)?) << 32);
            if flags & FLAG_TYPE_MASK != FLAG_ELF_LIBC6
                || flags & FLAG_REQUIRE_MASK != FLAG_X8664_LIB64
                || hwcap != 0
            {
                continue;
            }
            // String offsets count from the start of the new-format table.
            let (Some(name), Some(path)) = (string_at(table, key), string_at(table, value)) else {
                continue;
            };
            // The first entry for a name wins, as in ld.so's search of the sorted table.
            paths.entry(name).or_insert_with(|| PathBuf::from(path));
        }
        Some(LdCache { paths })
    }

    /// The path the cache gives for `soname`.
    pub fn lookup(&self, soname: &str) -> Option<&Path> {
        self.paths.get(soname).map(PathBuf::as_path)
    }
}

fn string_at(table: &[u8], offset: u32) -> Option<String> {
    let rest = table.get(offset as usize..)?;
    let end = rest.iter().position(|&byte| byte == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache as ldconfig writes it: header, entries, then the strings they point at.
    fn cache(entries: &[(u32, &str, &str, u64)]) -> Vec<u8> {
        let strings_at = HEADER_SIZE + entries.len() * ENTRY_SIZE;
        let mut strings = Vec::new();
        let mut table = Vec::new();
        for (flags, name, path, hwcap) in entries {
            let key = (strings_at + strings.len()) as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            let value = (strings_at + strings.len()) as u32;
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&key.to_le_bytes());
            table.extend_from_slice(&value.to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&hwcap.to_le_bytes());
        }
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        bytes.resize(HEADER_SIZE, 0);
        bytes.extend_from_slice(&table);
        bytes.extend_from_slice(&strings);
        bytes
    }

    #[test]
    fn x86_64_entries_outside_hwcaps_directories_are_read() {
        let bytes = cache(&[
            (0x0303, "libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0),
            (0x0003, "libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 0),
            (
                0x0303,
                "libm.so.6",
                "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libm.so.6",
                1 << 62,
            ),
            (0x0303, "libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6", 0),
        ]);
        let cache = LdCache::parse(&bytes).expect("a cache");
        assert_eq!(
            cache.lookup("libz.so.1"),
            Some(Path::new("/lib/x86_64-linux-gnu/libz.so.1"))
        );
        assert_eq!(
            cache.lookup("libm.so.6"),
            Some(Path::new("/lib/x86_64-linux-gnu/libm.so.6"))
        );
        assert_eq!(cache.lookup("libc.so.6"), None);
    }

    #[test]
    fn bytes_without_a_new_format_table_are_no_cache() {
        assert!(LdCache::parse(b"ld.so-1.7.0 and nothing else").is_none());
        let mut truncated = cache(&[(0x0303, "libz.so.1", "/lib/libz.so.1", 0)]);
        truncated.truncate(HEADER_SIZE + 8);
        assert_eq!(LdCache::parse(&truncated).map(|c| c.paths.len()), None);
    }

    #[test]
    fn the_hosts_cache_knows_libc() {
        // Debian's ldconfig always lists libc.
        let cache = LdCache::read(Path::new("/etc/ld.so.cache"));
        let libc = cache
            .lookup("libc.so.6")
            .expect("libc.so.6 in /etc/ld.so.cache");
        assert!(libc.exists(), "{}", libc.display());
    }
}
