//! The CRUD bench's load generator: one HTTP/1.1 keep-alive connection per simulated client, driven
//! through hyper's connection API, as `wrk` and `oha` drive theirs: a request made of a method, a path
//! and a body, on a held connection, each answer read whole. The bench shares the machine's two cores
//! with the service it measures, so what the generator spends per request is taken from the service;
//! with reqwest's pool, URL parsing and request builders in its place, GET by id measured a fifth to
//! a half lower (see BENCHMARKS, "A leaner load generator for the CRUD bench").

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request as the generator sends it.
pub struct Prepared {
    pub method: Method,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: String,
}

/// A held connection to the service, opened again after the service closes it.
pub struct Connection {
    address: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<String>>,
}

impl Connection {
    pub fn new(address: SocketAddr) -> anyhow::Result<Connection> {
        Ok(Connection {
            address,
            host: HeaderValue::from_str(&address.to_string())?,
            sender: None,
        })
    }

    /// Sends `request` and reads its answer whole; true if the status was a success. An error of the
    /// connection drops it, and the next request opens a new one.
    pub async fn send(&mut self, request: Prepared) -> bool {
        match self.exchange(request).await {
            Ok(success) => success,
            Err(_) => {
                self.sender = None;
                false
            }
        }
    }

    async fn exchange(&mut self, prepared: Prepared) -> anyhow::Result<bool> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(self.connect().await?),
        };
        let mut request = Request::builder()
            .method(prepared.method)
            .uri(prepared.path)
            .header(HOST, self.host.clone());
        if let Some(content_type) = prepared.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        sender.ready().await?;
        let response = sender.send_request(request.body(prepared.body)?).await?;
        let success = response.status().is_success();
        // The answer is not complete before its body is.
        response.into_body().collect().await?;
        Ok(success)
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<String>> {
        let stream = TcpStream::connect(self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection's own task reads and writes the socket; it ends when the sender is dropped.
        tokio::spawn(connection);
        Ok(sender)
    }
}
