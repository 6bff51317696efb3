//! A proxied run written as a trace in the fixtures' format, as it happens: every command the
//! clients sent, in the order the proxy forwarded them, connections and channels named as the
//! proxy numbered them (`c1.1`), names the broker generated (`amq.gen-...` queues, `amq.ctag-...`
//! consumer tags) as variables (`-> $q1`), and what the broker did as comments (`# c1.1 saw
//! basic.deliver ...`) to turn into `expect` lines by hand. `run` replays it against any broker,
//! judged by the model; the file is written out whenever the reader has caught up with the
//! traffic (line by line when it is light, in larger writes under load), so a proxy that is
//! killed loses at most what it read since.

use super::session::Seen;
use crate::trace::{write_command, write_event};
use amqp_model::event::Reply;
use amqp_model::{ChanRef, Command, Event, Name};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The trace being written.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    /// A generated name -> its variable.
    vars: BTreeMap<Name, Name>,
    /// Channels whose next declare-ok (`q`) or consume-ok (`t`) names what a variable stands for.
    capturing: HashMap<(ChanRef, char), Name>,
    counts: HashMap<char, usize>,
    /// Lines written so far.
    lines: usize,
}

impl Recorder {
    /// Start `DIR/proxy-<unix seconds>-<pid>.trace`, with its header.
    pub fn create(dir: &Path, upstream: &str) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(dir)?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let path = dir.join(format!("proxy-{stamp}-{}.trace", std::process::id()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(file, "title: a session recorded by amqp-conformance proxy (upstream {upstream})")?;
        writeln!(file)?;
        writeln!(
            file,
            "# Every command the clients sent, in the order the proxy forwarded them; what the broker did\n\
             # is in comments (`# saw ...`), to turn into `expect` lines where the trace should pin it."
        )?;
        let (vars, capturing, counts) = (BTreeMap::new(), HashMap::new(), HashMap::new());
        Ok(Recorder { path, file, vars, capturing, counts, lines: 4 })
    }

    /// How many lines are written: the next thing seen is written on the line after.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Where the trace is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fresh(&mut self, kind: char) -> Name {
        let n = self.counts.entry(kind).or_insert(0);
        *n += 1;
        Name::from(format!("${kind}{n}"))
    }

    /// Write what was seen.
    pub fn write(&mut self, seen: &Seen) -> std::io::Result<()> {
        match seen {
            Seen::Command(cmd, nowait) => {
                let vars = &self.vars;
                let cmd = cmd.map_names(|n| vars.get(n).cloned().unwrap_or_else(|| n.clone()));
                let capture = match &cmd {
                    Command::QueueDeclare { ch, queue, .. } if queue.is_empty() => Some((*ch, 'q')),
                    Command::BasicConsume { ch, consumer_tag, .. } if consumer_tag.is_empty() => Some((*ch, 't')),
                    _ => None,
                };
                let mut line = write_command(&cmd);
                if let Some((ch, kind)) = capture {
                    let var = self.fresh(kind);
                    line.push_str(&format!(" -> {var}"));
                    self.capturing.insert((ch, kind), var);
                }
                if *nowait {
                    // The replay waits for the answer the client did not ask for: the model
                    // judges the same command either way.
                    writeln!(self.file, "# note: sent with nowait")?;
                    self.lines += 1;
                }
                writeln!(self.file, "{line}")?;
            }
            Seen::Event(e) => {
                let generated = match e {
                    Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, .. } } => Some((*ch, 'q', queue)),
                    Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag } } => Some((*ch, 't', consumer_tag)),
                    _ => None,
                };
                if let Some((ch, kind, name)) = generated {
                    if let Some(var) = self.capturing.remove(&(ch, kind)) {
                        self.vars.insert(name.clone(), var);
                    }
                }
                writeln!(self.file, "# saw {}", write_event(e))?;
            }
            Seen::Note(note) | Seen::Refused { note, .. } => writeln!(self.file, "# note: {note}")?,
            // A replay answers every close before its next command.
            Seen::CloseOk(_) => return Ok(()),
        }
        self.lines += 1;
        Ok(())
    }

    /// Write out what is buffered (the reader does whenever it has nothing more to read).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }

    /// The end of the run: a last `wait`, so that a replay checks what the broker still owed.
    pub fn finish(&mut self) -> std::io::Result<()> {
        writeln!(self.file, "wait")?;
        self.file.flush()
    }
}
