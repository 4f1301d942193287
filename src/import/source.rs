//! Where import bytes come from when they are not a plain file under the
//! copy root: uploads and COPY FROM STDIN are spooled to a file in the work
//! root as they arrive (never held whole in memory), and gzip or zstd input,
//! recognised by its magic bytes, is decompressed next to it. The importer
//! then maps the plain file like any other, so every way in shares one
//! lexer, one decoder and one commit.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// How a byte stream is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Why a source could not be made ready for the importer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// More bytes than the limit, before or after decompression.
    #[error("{what} exceeds the size limit [limit={limit} bytes]")]
    TooLarge { what: &'static str, limit: u64 },
    /// A compressed stream that does not decode (truncated, corrupt).
    #[error(
        "{compression} stream is corrupt or truncated [file={file}, decompressed={at} bytes]: {message}"
    )]
    Corrupt {
        compression: &'static str,
        file: String,
        at: u64,
        message: String,
    },
    #[error("could not write import data [path={path}]: {message}")]
    Io { path: String, message: String },
}

/// How a spooling failure reaches users: the engine's one error type.
impl From<SourceError> for crate::error::Error {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::TooLarge { what, limit } => crate::error::Error::TooLarge {
                what: what.to_string(),
                limit,
            },
            corrupt @ SourceError::Corrupt { .. } => {
                crate::error::Error::invalid(corrupt.to_string())
            }
            io @ SourceError::Io { .. } => crate::error::Error::Internal(io.to_string()),
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A file in the work root that is removed when dropped.
#[derive(Debug)]
pub struct TempFile {
    pub path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bytes arriving in pieces, written to a scratch file with a size limit.
pub struct Spool {
    file: BufWriter<File>,
    temp: TempFile,
    written: u64,
    limit: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.temp.path)
            .field("written", &self.written)
            .finish()
    }
}

/// A new unique path in `dir` (created if missing) with `suffix`.
pub fn scratch_path(dir: &Path, suffix: &str) -> Result<PathBuf, SourceError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    Ok(dir.join(format!("{}{suffix}", uuid::Uuid::new_v4().simple())))
}

impl Spool {
    /// A spool in `dir` taking at most `limit` bytes.
    pub fn create(dir: &Path, limit: u64) -> Result<Spool, SourceError> {
        let path = scratch_path(dir, ".upload")?;
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        Ok(Spool {
            file: BufWriter::with_capacity(1 << 20, file),
            temp: TempFile { path },
            written: 0,
            limit,
        })
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), SourceError> {
        self.written += data.len() as u64;
        if self.written > self.limit {
            return Err(SourceError::TooLarge {
                what: "upload",
                limit: self.limit,
            });
        }
        self.file
            .write_all(data)
            .map_err(|e| io_err(&self.temp.path, e))
    }

    /// Closes the spool and keeps the bytes as they came (a Parquet upload).
    pub fn finish_raw(self) -> Result<(TempFile, Compression), SourceError> {
        let Spool { file, temp, .. } = self;
        file.into_inner()
            .map_err(|e| io_err(&temp.path, e.into_error()))?;
        Ok((temp, Compression::None))
    }

    /// Closes the spool; a compressed upload is decompressed (at most
    /// `limit` bytes out, which stops a decompression bomb) and the
    /// compressed copy removed.
    pub fn finish(self, name: &str) -> Result<(TempFile, Compression), SourceError> {
        let limit = self.limit;
        let (temp, _) = self.finish_raw()?;
        let compression = sniff_file(&temp.path)?;
        if compression == Compression::None {
            return Ok((temp, compression));
        }
        let out = TempFile {
            path: temp.path.with_extension("csv"),
        };
        decompress(&temp.path, &out.path, compression, limit, name)?;
        Ok((out, compression))
    }
}

/// The compression of the file at `path`.
pub fn sniff_file(path: &Path) -> Result<Compression, SourceError> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(io_err(path, e)),
        }
    }
    Ok(Compression::sniff(&head[..n]))
}

/// Decompresses `src` into `dst`, failing past `limit` output bytes.
pub fn decompress(
    src: &Path,
    dst: &Path,
    compression: Compression,
    limit: u64,
    name: &str,
) -> Result<u64, SourceError> {
    let input =
        std::io::BufReader::with_capacity(1 << 20, File::open(src).map_err(|e| io_err(src, e))?);
    let mut reader: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(
            |e| SourceError::Corrupt {
                compression: "zstd",
                file: name.to_string(),
                at: 0,
                message: e.to_string(),
            },
        )?),
        Compression::None => Box::new(input),
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dst).map_err(|e| io_err(dst, e))?);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = std::fs::remove_file(dst);
                return Err(SourceError::Corrupt {
                    compression: compression.name(),
                    file: name.to_string(),
                    at: total,
                    message: e.to_string(),
                });
            }
        };
        total += n as u64;
        if total > limit {
            let _ = std::fs::remove_file(dst);
            return Err(SourceError::TooLarge {
                what: "decompressed data",
                limit,
            });
        }
        out.write_all(&buf[..n]).map_err(|e| io_err(dst, e))?;
    }
    out.into_inner().map_err(|e| io_err(dst, e.into_error()))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-source-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn gzip_and_zstd_round_trip_and_limits() {
        let d = dir();
        let text = b"a,b\n1,2\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::stream::encode_all(&text[..], 1).unwrap();
        for (data, c) in [(&gz, Compression::Gzip), (&zs, Compression::Zstd)] {
            let mut s = Spool::create(&d, 1 << 20).unwrap();
            for piece in data.chunks(7) {
                s.write(piece).unwrap();
            }
            let (f, got) = s.finish("x").unwrap();
            assert_eq!(got, c);
            assert_eq!(std::fs::read(&f.path).unwrap(), text);
        }
        // Over the limit after decompression: a bomb is stopped.
        let mut s = Spool::create(&d, 4000).unwrap();
        s.write(&gz).unwrap();
        assert!(matches!(s.finish("x"), Err(SourceError::TooLarge { .. })));
        // Over the limit before.
        {
            let mut s = Spool::create(&d, 10).unwrap();
            assert!(matches!(s.write(&text), Err(SourceError::TooLarge { .. })));
        }
        // Truncated.
        let mut s = Spool::create(&d, 1 << 20).unwrap();
        s.write(&gz[..gz.len() / 2]).unwrap();
        assert!(matches!(s.finish("x"), Err(SourceError::Corrupt { .. })));
        // Plain passes through.
        let mut s = Spool::create(&d, 1 << 20).unwrap();
        s.write(b"x\n1\n").unwrap();
        let (f, c) = s.finish("x").unwrap();
        assert_eq!(
            (c, std::fs::read(&f.path).unwrap()),
            (Compression::None, b"x\n1\n".to_vec())
        );
        drop(f);
        // Every scratch file is gone.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }
}
