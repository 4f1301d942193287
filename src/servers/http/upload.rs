//! Reading a multipart upload: small text parts into memory, the one file
//! part streamed into a spool in the work root (with the size limit, and
//! gzip/zstd recognised and decompressed), never the whole body in memory.

use std::collections::HashMap;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;

use crate::engine::Engine;
use crate::engine::ingest::{Spool, TempFile};
use crate::error::Error;

/// Largest text part (a schema, a database name).
const TEXT_PART_MAX: usize = 1 << 20;

/// The parts of one upload.
#[derive(Debug)]
pub struct Upload {
    pub text: HashMap<String, String>,
    pub file: Option<UploadedFile>,
}

#[derive(Debug)]
pub struct UploadedFile {
    /// The file name the client gave, if any.
    pub name: Option<String>,
    /// The received bytes, decompressed when gzip or zstd.
    pub data: TempFile,
}

fn bad(message: impl Into<String>) -> Error {
    Error::invalid(message)
}

/// A `delimiter` query parameter: one ASCII character (URL-encoded, so a
/// tab is `%09`; `\t` is taken too); `None` when absent or empty.
pub fn delimiter_param(value: Option<&str>) -> Result<Option<u8>, Error> {
    match value {
        None | Some("") => Ok(None),
        Some("\\t") => Ok(Some(b'\t')),
        Some(d) if d.len() == 1 && d.is_ascii() => Ok(Some(d.as_bytes()[0])),
        Some(d) => Err(bad(format!(
            "invalid delimiter '{d}' (one ASCII character expected)"
        ))),
    }
}

/// Reads `multipart`; `file_part` names the data part. Text parts may come
/// before or after it (the `questdb-rest` client sends `schema` last): the
/// file is spooled to disk either way, so nothing waits on the order.
pub async fn read(
    engine: &Engine,
    multipart: Result<Multipart, MultipartRejection>,
    file_part: &str,
    decompress: bool,
) -> Result<Upload, Error> {
    let mut multipart = multipart.map_err(|r| {
        bad(format!(
            "invalid multipart request: {} (expected Content-Type: multipart/form-data with a boundary)",
            r.body_text()
        ))
    })?;
    let mut out = Upload {
        text: HashMap::new(),
        file: None,
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(bad(format!("malformed multipart body: {e}"))),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == file_part {
            if out.file.is_some() {
                return Err(bad(format!("more than one '{file_part}' part")));
            }
            let file_name = field.file_name().map(str::to_string);
            let mut spool = Spool::create(&engine.upload_dir(), engine.upload_limit())?;
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(bytes)) => spool.write(&bytes)?,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(bad(format!(
                            "malformed multipart body in part '{file_part}': {e}"
                        )));
                    }
                }
            }
            let shown = file_name.clone().unwrap_or_else(|| file_part.to_string());
            let (data, _compression) = if decompress {
                tokio::task::spawn_blocking(move || spool.finish(&shown))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))??
            } else {
                spool.finish_raw()?
            };
            out.file = Some(UploadedFile {
                name: file_name,
                data,
            });
            continue;
        }
        let mut text = Vec::new();
        let mut field = field;
        loop {
            match field.chunk().await {
                Ok(Some(bytes)) => {
                    text.extend_from_slice(&bytes);
                    if text.len() > TEXT_PART_MAX {
                        return Err(bad(format!("multipart part '{name}' is too large")));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(bad(format!(
                        "malformed multipart body in part '{name}': {e}"
                    )));
                }
            }
        }
        let text = String::from_utf8(text)
            .map_err(|_| bad(format!("multipart part '{name}' is not UTF-8 text")))?;
        out.text.insert(name, text);
    }
    Ok(out)
}
