//! Log files as supervisord's XML-RPC serves them: a byte range (`readLog`,
//! `readProcessStdoutLog`), a tail with an overflow flag (`tailProcessStdoutLog`), and clearing.
//!
//! Clearing truncates the file rather than removing it as supervisord does: taskmaster's
//! children and its event log hold their files open for appending, so a removed file would
//! keep growing unseen, while a truncated one is written from its new start.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::fault::{Code, Fault};

/// supervisord's `readFile`: `length` bytes from `offset`; a negative `offset` counts from the
/// end and then needs `length` 0; `length` 0 reads to the end.
pub fn read(path: &Path, offset: i64, length: i64) -> Result<Vec<u8>, Fault> {
    if (offset < 0 && length != 0) || length < 0 {
        return Err(Fault::new(Code::BadArguments));
    }
    let failed = |_| Fault::new(Code::Failed);
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let size = file.metadata().map_err(failed)?.len();
    let (start, take) = if offset < 0 {
        (
            size.saturating_sub(offset.unsigned_abs()),
            offset.unsigned_abs(),
        )
    } else if length == 0 {
        (offset.unsigned_abs(), u64::MAX)
    } else {
        (offset.unsigned_abs(), length.unsigned_abs())
    };
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start)).map_err(failed)?;
    file.take(take).read_to_end(&mut bytes).map_err(failed)?;
    Ok(bytes)
}

/// supervisord's `tailFile`: up to `length` bytes ending at the file's end when it has grown
/// past `offset + length` (then `overflow`), else from `offset`; and the offset to ask from
/// next, the file's size. A file that cannot be read gives nothing and `offset` back.
pub fn tail(path: &Path, offset: i64, length: i64) -> (Vec<u8>, i64, bool) {
    let read = || -> std::io::Result<(Vec<u8>, i64, bool)> {
        let mut file = std::fs::File::open(path)?;
        let size = i64::try_from(file.metadata()?.len()).unwrap_or(i64::MAX);
        let (mut offset, mut length) = (offset, length);
        let mut overflow = false;
        if size > offset.saturating_add(length) {
            overflow = true;
            offset = size - 1;
        }
        if offset.saturating_add(length) > size {
            if offset > size - 1 {
                length = 0;
            }
            offset = size - length;
        }
        let (offset, length) = (offset.max(0), length.max(0));
        let mut bytes = Vec::new();
        if length > 0 {
            file.seek(SeekFrom::Start(offset.unsigned_abs()))?;
            file.take(length.unsigned_abs()).read_to_end(&mut bytes)?;
        }
        Ok((bytes, size, overflow))
    };
    read().unwrap_or((Vec::new(), offset, false))
}

/// Empties the file at `path`.
pub fn clear(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(0)
}

/// Log bytes as an XML-RPC string (invalid UTF-8 becomes U+FFFD).
pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(content: &[u8]) -> (std::path::PathBuf, impl Drop) {
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("tm-xmlrpc-logs-{}-{n}", std::process::id()));
        std::fs::write(&path, content).expect("write");
        (path.clone(), Remove(path))
    }

    #[test]
    fn read_follows_supervisords_read_file() {
        let (path, _keep) = file_with(b"0123456789");
        assert_eq!(read(&path, 0, 0).unwrap(), b"0123456789");
        assert_eq!(read(&path, 2, 3).unwrap(), b"234");
        assert_eq!(read(&path, -4, 0).unwrap(), b"6789");
        assert_eq!(read(&path, -100, 0).unwrap(), b"0123456789");
        assert_eq!(read(&path, 50, 0).unwrap(), b"");
        assert_eq!(read(&path, -4, 2).unwrap_err().code, Code::BadArguments);
        assert_eq!(read(&path, 0, -2).unwrap_err().code, Code::BadArguments);
        let missing = path.with_extension("missing");
        assert_eq!(read(&missing, 0, 0).unwrap_err().code, Code::Failed);
    }

    #[test]
    fn tail_follows_supervisords_tail_file() {
        let (path, _keep) = file_with(b"0123456789");
        // Grown past offset + length: the last `length` bytes, with overflow.
        assert_eq!(tail(&path, 0, 4), (b"6789".to_vec(), 10, true));
        // Less than `length` available past offset: what there is.
        assert_eq!(tail(&path, 8, 4), (b"6789".to_vec(), 10, false));
        // Nothing new.
        assert_eq!(tail(&path, 10, 4), (Vec::new(), 10, false));
        let missing = path.with_extension("missing");
        assert_eq!(tail(&missing, 5, 4), (Vec::new(), 5, false));
    }

    #[test]
    fn clear_empties_the_file() {
        let (path, _keep) = file_with(b"something");
        clear(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }
}
