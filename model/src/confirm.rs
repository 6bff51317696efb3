//! The `confirm` class (RabbitMQ's publisher confirms): `confirm.select`. Acknowledgements of
//! publishes are emitted by `basic.publish` ([`crate::basic`]).

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::state::{Broker, Mode};
use crate::types::{ChanRef, ReplyCode};

impl Broker {
    /// `confirm.select`: from now on every publish on the channel is numbered from 1 and
    /// acknowledged (`confirm all messages acknowledged`). A transactional channel cannot be put
    /// in confirm mode (406); selecting twice is harmless.
    pub(crate) fn confirm_select(&mut self, ch: ChanRef, out: &mut Vec<Event>) -> Outcome {
        let chan = self.channel_mut(ch);
        match chan.mode {
            Mode::Tx { .. } => return Err(Exception::Channel(ReplyCode::PreconditionFailed)),
            Mode::Plain => chan.mode = Mode::Confirm { next_seq: 1 },
            Mode::Confirm { .. } => {}
        }
        out.push(Event::Reply { ch, reply: Reply::ConfirmSelectOk });
        Ok(())
    }
}
