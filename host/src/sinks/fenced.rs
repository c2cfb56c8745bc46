//! The lease check where a request's bytes leave: a round's deliveries are sent only while their
//! regions are led under the epochs they were read under, and the last check is made by whatever
//! writes the request body, at the moment it takes the body.
//!
//! The HTTP client hands a request to its connection's own task, which writes it when next scheduled.
//! A check in the lane before that hand-off leaves a gap: a process paused (SIGSTOP, a VM freeze)
//! between the hand-off and the write would, once resumed, write the request before anything else
//! ran, long after its successor began. So the body is handed over only after one more check, in
//! that task's own poll: a body refused there is never written, and its request stays incomplete
//! (its `Content-Length` unmet), which no receiver accepts.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};

use crate::lease::Leadership;

/// The regions a round was read under, each with its epoch.
#[derive(Debug, Clone)]
pub struct Epochs {
    leadership: Arc<Leadership>,
    epochs: Arc<BTreeMap<String, u64>>,
}

impl Epochs {
    /// The regions `leadership` leads now.
    pub fn now(leadership: &Arc<Leadership>) -> Epochs {
        let epochs = (leadership.led().into_iter())
            .map(|(region, fence)| (region, fence.epoch))
            .collect();
        Epochs {
            leadership: leadership.clone(),
            epochs: Arc::new(epochs),
        }
    }

    pub fn regions(&self) -> Vec<String> {
        self.epochs.keys().cloned().collect()
    }

    /// Whether `region` is still led under the epoch the round was read under.
    pub fn leads(&self, region: &str) -> bool {
        self.epochs
            .get(region)
            .is_some_and(|epoch| self.leadership.leads(region, *epoch))
    }

    /// Whether every one of `regions` is still led under the epoch the round was read under.
    pub fn leads_every<'a>(&self, mut regions: impl Iterator<Item = &'a str>) -> bool {
        regions.all(|region| self.leads(region))
    }

    /// A request body of `bytes` that is handed over only while every one of `regions` is led.
    pub fn fence<'a>(&self, regions: impl Iterator<Item = &'a str>, bytes: String) -> FencedBody {
        let mut regions: Vec<String> = regions.map(str::to_owned).collect();
        regions.sort_unstable();
        regions.dedup();
        FencedBody {
            bytes: Some(Bytes::from(bytes)),
            regions,
            epochs: self.clone(),
        }
    }
}

/// Why a request body was not handed over.
#[derive(Debug, thiserror::Error)]
#[error("the region's lease was lost before the request was written")]
pub struct LeaseLost;

/// A request body, checked against its regions' leases when it is taken; see the module's doc.
#[derive(Debug)]
pub struct FencedBody {
    bytes: Option<Bytes>,
    regions: Vec<String>,
    epochs: Epochs,
}

impl Body for FencedBody {
    type Data = Bytes;
    type Error = LeaseLost;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, LeaseLost>>> {
        let body = self.get_mut();
        let Some(bytes) = body.bytes.take() else {
            return Poll::Ready(None);
        };
        if body
            .epochs
            .leads_every(body.regions.iter().map(String::as_str))
        {
            Poll::Ready(Some(Ok(Frame::data(bytes))))
        } else {
            Poll::Ready(Some(Err(LeaseLost)))
        }
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    /// Exact, so that the request carries a `Content-Length` a cut-off body cannot meet.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::lease::Grant;

    /// The head and the body of the one request a plain socket receives, answering 200 only when
    /// the body is as long as its `Content-Length` says.
    fn receive_one() -> (String, JoinHandle<(String, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let receiving = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut bytes = Vec::new();
            let mut chunk = [0; 4096];
            let complete = loop {
                let read = socket.read(&mut chunk).expect("read");
                bytes.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&bytes);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = (head.lines())
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .map(|length| length.parse::<usize>().expect("a length"));
                    if length == Some(body.len()) {
                        break true;
                    }
                }
                if read == 0 {
                    break false;
                }
            };
            if complete {
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .expect("answer");
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            (head.to_owned(), body.as_bytes().to_vec())
        });
        (url, receiving)
    }

    fn leading_north() -> Arc<Leadership> {
        let leadership = Arc::new(Leadership::new("me".into()));
        let valid_until = Instant::now() + Duration::from_secs(60);
        leadership.set(
            "north",
            Grant {
                epoch: 3,
                valid_until,
            },
        );
        leadership
    }

    #[tokio::test]
    async fn a_body_whose_regions_are_led_is_written_with_its_exact_length() {
        let epochs = Epochs::now(&leading_north());
        let (url, receiving) = receive_one();
        let body = epochs.fence(["north", "north"].into_iter(), "[1,2]".into());
        let response = (reqwest::Client::new().post(url))
            .body(reqwest::Body::wrap(body))
            .send()
            .await
            .expect("sent");
        assert!(response.status().is_success());
        let (head, body) = receiving.join().expect("receiver");
        assert!(head.contains("content-length: 5"), "{head}");
        assert_eq!(body, b"[1,2]");
    }

    #[tokio::test]
    async fn a_body_whose_lease_was_lost_after_the_round_began_is_never_written() {
        let leadership = leading_north();
        let epochs = Epochs::now(&leadership);
        leadership.lose("north", 3);
        let (url, receiving) = receive_one();
        let body = epochs.fence(["north"].into_iter(), "[1,2]".into());
        let sent = (reqwest::Client::new().post(url))
            .body(reqwest::Body::wrap(body))
            .send()
            .await;
        let error = sent.expect_err("the request cannot complete");
        let (head, body) = receiving.join().expect("receiver");
        assert!(body.is_empty(), "{head}: {body:?}");
        assert!(format!("{error:?}").contains("LeaseLost"), "{error:?}");
    }

    #[test]
    fn a_body_of_a_region_never_led_is_refused() {
        let epochs = Epochs::now(&leading_north());
        let mut body = epochs.fence(["north", "south"].into_iter(), "[1]".into());
        let waker = std::task::Waker::noop();
        let frame = Pin::new(&mut body).poll_frame(&mut Context::from_waker(waker));
        assert!(matches!(frame, Poll::Ready(Some(Err(LeaseLost)))));
        assert!(body.is_end_stream());
    }
}
