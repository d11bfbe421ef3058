//! Any tokio byte stream (Unix socket, TCP) as a [`Transport`].

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{SendKind, Transport, TransportResult};

/// A transport over a plain stream; `read` is tokio's cancel-safe read.
pub struct StreamTransport<S> {
    stream: S,
    description: String,
}

impl<S> StreamTransport<S> {
    /// Wraps `stream`, described as `description` in messages.
    pub fn new(stream: S, description: String) -> Self {
        StreamTransport {
            stream,
            description,
        }
    }
}

#[async_trait]
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for StreamTransport<S> {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        Ok(self.stream.read(buf).await?)
    }

    async fn write(&mut self, data: &[u8], _kind: SendKind) -> TransportResult<()> {
        self.stream.write_all(data).await?;
        Ok(self.stream.flush().await?)
    }

    async fn close(&mut self) -> TransportResult<()> {
        Ok(self.stream.shutdown().await?)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
