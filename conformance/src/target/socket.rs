//! A blocking socket that writes and reads whole AMQP frames ([`amqp_wire::codec`]), and opens a
//! connection with the shared client handshake ([`amqp_wire::client`]): the raw-frame target's
//! connections, and the hand-written clients of the tests.

use amq_protocol::frame::AMQPFrame;
use amqp_wire::client::{handshake, Awaited, HandshakeIo, Login, Opened};
use amqp_wire::{encode, FrameBuffer, FrameFault};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

/// What reading the next frame came to.
#[derive(Debug)]
pub enum Read1 {
    /// A whole frame.
    Frame(Box<AMQPFrame>),
    /// The socket was closed (or reset) by the other side.
    Closed,
    /// Nothing whole came before the deadline.
    TimedOut,
    /// The other side sent something that is not a frame.
    Fault(FrameFault),
}

/// A connected socket and what it has read and not yet taken.
#[derive(Debug)]
pub struct FrameSocket {
    stream: TcpStream,
    frames: FrameBuffer,
}

impl FrameSocket {
    /// Connect to `addr` (no delay on small writes).
    pub fn connect(addr: impl ToSocketAddrs) -> std::io::Result<FrameSocket> {
        let stream = TcpStream::connect(addr)?;
        let _ = stream.set_nodelay(true);
        Ok(FrameSocket { stream, frames: FrameBuffer::new() })
    }

    /// The socket, to write bytes that are not frames or to read without frames.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Write `frames`; an error says the socket is gone or a frame cannot be encoded.
    pub fn send(&mut self, frames: &[AMQPFrame]) -> std::io::Result<()> {
        let bytes = encode(frames).ok_or_else(|| std::io::Error::other("a frame cannot be encoded"))?;
        self.stream.write_all(&bytes)
    }

    /// The next whole frame, waiting for it until `deadline`.
    pub fn read(&mut self, deadline: Instant) -> Read1 {
        loop {
            match self.frames.next(u32::MAX) {
                Some(Ok(framed)) => return Read1::Frame(Box::new(framed.frame)),
                Some(Err(fault)) => return Read1::Fault(fault),
                None => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => self.frames.extend(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Read1::TimedOut
                }
                Err(_) => return Read1::Closed,
            }
        }
    }

    /// Open an AMQP connection on this socket as `login` ([`handshake`]), waiting for each of the
    /// server's methods with `reply`, which reads this socket (and may report what else comes).
    pub fn handshake(
        &mut self,
        login: &Login<'_>,
        tune_ok: impl FnOnce(&amq_protocol::protocol::connection::Tune) -> amq_protocol::protocol::connection::TuneOk,
        reply: impl FnMut(&mut FrameSocket, Awaited) -> Option<AMQPFrame>,
    ) -> Option<Opened> {
        struct Io<'s, R> {
            socket: &'s mut FrameSocket,
            reply: R,
        }
        impl<R: FnMut(&mut FrameSocket, Awaited) -> Option<AMQPFrame>> HandshakeIo for Io<'_, R> {
            fn send(&mut self, frames: &[AMQPFrame]) {
                let _ = self.socket.send(frames);
            }
            fn reply(&mut self, awaited: Awaited) -> Option<AMQPFrame> {
                (self.reply)(self.socket, awaited)
            }
        }
        handshake(&mut Io { socket: self, reply }, login, tune_ok)
    }
}
