//! Reading the server's answer out of the human-readable text of a bounce, for MTAs that
//! send no delivery-status part (qmail, Exim, Postfix without DSN, provider notices).

use super::codes;

/// The SMTP command a rejection answered; it tells whose fault a vague refusal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Unknown,
    /// Refused at connection or greeting: only the sending host was known.
    Connect,
    /// Refused at MAIL FROM: only the sender was known.
    MailFrom,
    Rcpt,
    /// Refused after the content was sent.
    Data,
    /// Not an SMTP answer at all: the recipient's own local delivery agent failed.
    Local,
}

/// Phrases naming the stage, as Postfix ("in reply to RCPT TO command"), Exim ("after
/// RCPT TO:"), Sendmail transcripts (">>> RCPT To:") and others write them.
const STAGE_PHRASES: &[(&str, Stage)] = &[
    ("after initial connection", Stage::Connect),
    ("in reply to initial greeting", Stage::Connect),
    ("after connection", Stage::Connect),
    ("in reply to helo", Stage::Connect),
    ("in reply to ehlo", Stage::Connect),
    ("after helo", Stage::Connect),
    ("after ehlo", Stage::Connect),
    (">>> helo", Stage::Connect),
    (">>> ehlo", Stage::Connect),
    // qmail: "Connected to x but greeting failed." / "... but my name was rejected."
    ("but greeting failed", Stage::Connect),
    ("but my name was rejected", Stage::Connect),
    // Postfix: "host x refused to talk to me: 554 ..." is the answer to the connection.
    ("refused to talk to me", Stage::Connect),
    ("after mail from", Stage::MailFrom),
    ("after mail command", Stage::MailFrom),
    ("in reply to mail from", Stage::MailFrom),
    (">>> mail from", Stage::MailFrom),
    ("mail from command", Stage::MailFrom),
    ("[mail_from]", Stage::MailFrom),
    // qmail: "Connected to x but sender was rejected."
    ("but sender was rejected", Stage::MailFrom),
    ("after rcpt to", Stage::Rcpt),
    // Exim variants: "SMTP error from remote server after RCPT command"
    ("after rcpt", Stage::Rcpt),
    ("rcpt to generated", Stage::Rcpt),
    ("in reply to rcpt to", Stage::Rcpt),
    (">>> rcpt to", Stage::Rcpt),
    ("rcpt to command", Stage::Rcpt),
    ("[rcpt_to]", Stage::Rcpt),
    // Yahoo notes the stage in brackets after the reply: [RCPT_TO], [BODY].
    ("[body]", Stage::Data),
    ("smtp:rcpt", Stage::Rcpt),
    ("after pipelined rcpt", Stage::Rcpt),
    // qmail: "x does not like recipient." is its note on a refused RCPT TO.
    ("does not like recipient", Stage::Rcpt),
    // Sun/Oracle Messaging Server: "Reason: Remote SMTP server has rejected address".
    ("server has rejected address", Stage::Rcpt),
    ("after end of data", Stage::Data),
    ("in reply to end of data", Stage::Data),
    ("in reply to data", Stage::Data),
    ("after data", Stage::Data),
    (">>> data", Stage::Data),
    ("for text command", Stage::Data),
    ("end of data command", Stage::Data),
    // Sendmail's local mailer and other local delivery agents speak for the mailbox itself.
    ("mail.local:", Stage::Local),
    ("local delivery", Stage::Local),
    ("rejected after data", Stage::Data),
    ("after pipelined data", Stage::Data),
    ("in reply to bdat", Stage::Data),
    // Sendmail's transcript of the end-of-data dot: ">>> ." then "<<< 554 ...".
    (">>> .\n", Stage::Data),
    (">>> . <<<", Stage::Data),
    ("data command", Stage::Data),
    // qmail: "x failed after I sent the message."
    ("failed after i sent the message", Stage::Data),
];

/// The stage named earliest in `text`.
pub(crate) fn detect_stage(text: &str) -> Stage {
    let lower = text.to_ascii_lowercase();
    STAGE_PHRASES
        .iter()
        .filter_map(|(phrase, stage)| lower.find(phrase).map(|at| (at, *stage)))
        .min_by_key(|(at, _)| *at)
        .map_or(Stage::Unknown, |(_, stage)| stage)
}

/// What the human text says about the first failed recipient.
#[derive(Debug, Default)]
pub(crate) struct TextDiagnostic {
    /// The remote server's words (the lines around the first SMTP reply or status code).
    pub diagnostic: String,
    pub recipient: Option<String>,
}

/// Lines that introduce the server's answer on the lines after them.
const INTRODUCERS: &[&str] = &[
    "said:",
    // Gmail and Google Workspace: "The response was:" / "The response from the remote server was:"
    "the response was",
    "the response from the remote server was",
    "returned was:",
    "server returned",
    "reason:",
    "error message below",
    "the error that",
    "diagnostic information",
    "remote host said",
    "delivery failed for the following reason",
    "failed to deliver",
    "the following address(es) failed",
    "following addresses had",
    "could not be delivered to",
    "unable to deliver",
    "wasn't able to deliver",
    "was not able to deliver",
    "couldn't be delivered",
    "could not be sent",
];

/// Most bounce texts are short; only the first lines matter and hostile input stays cheap.
const MAX_LINES: usize = 400;

pub(crate) fn extract(human: &str) -> TextDiagnostic {
    let lines: Vec<&str> = human.lines().take(MAX_LINES).collect();
    let mut found = TextDiagnostic::default();
    // First choice: the first line carrying a failure reply code or status code.
    let with_code = lines.iter().position(|line| {
        let l = line.trim();
        !is_header_like(l)
            && (codes::find_reply_code(l, true).is_some()
                || codes::find_status_codes(l)
                    .iter()
                    .any(|c| !c.starts_with('2')))
    });
    let start = with_code.or_else(|| {
        // Otherwise the line after an introducer such as "Remote host said:".
        lines.iter().position(|line| {
            let lower = line.to_ascii_lowercase();
            INTRODUCERS.iter().any(|i| lower.contains(i))
        })
    });
    if let Some(start) = start {
        let mut text = String::new();
        // The reply often continues on indented or unindented lines until a blank line.
        // An introducer line ("The following address(es) failed:") is followed by a blank
        // line and then the failure itself, so the paragraph after it is read too.
        let introduced = with_code.is_none();
        let mut taken = 0;
        for line in lines.iter().skip(start).take(8) {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                if introduced && taken == 1 {
                    continue;
                }
                if !text.is_empty() {
                    break;
                }
                continue;
            }
            taken += 1;
            text.push_str(trimmed);
            text.push(' ');
        }
        // Include the line just before: it usually names the recipient and the command.
        if start > 0 {
            let previous = lines[start - 1].trim();
            if !previous.is_empty() && !is_header_like(previous) {
                text = format!("{previous} {text}");
            }
        }
        found.diagnostic = text.trim().to_string();
    }
    found.recipient =
        first_address(&found.diagnostic).or_else(|| lines.iter().find_map(|l| first_address(l)));
    found
}

/// Lines of a quoted header block ("Received: ...", "Date: ...") are not diagnostics.
fn is_header_like(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    [
        "received:",
        "date:",
        "message-id:",
        "x-",
        "dkim-signature:",
        "arrival-date:",
        "last-attempt-date:",
        "return-path:",
    ]
    .iter()
    .any(|h| lower.starts_with(h))
}

/// The first thing that looks like an email address: `<a@b>` preferred, else a bare a@b.
pub(crate) fn first_address(text: &str) -> Option<String> {
    let at = text.find('@')?;
    let is_addr_char = |c: char| c.is_alphanumeric() || "._%+-=".contains(c);
    let start = text[..at]
        .char_indices()
        .rev()
        .find(|(_, c)| !is_addr_char(*c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = text[at + 1..]
        .find(|c: char| !(is_addr_char(c)))
        .map_or(text.len(), |i| at + 1 + i);
    let local = &text[start..at];
    let domain = text[at + 1..end].trim_end_matches('.');
    (!local.is_empty() && domain.contains('.')).then(|| format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_reply_line_and_recipient() {
        let text = "Hi. This is the qmail-send program at mx.example.org.\n\n<bob@example.net>:\n\
Remote host said: 550 5.1.1 <bob@example.net>: mailbox not found\n\n--- Below this line";
        let d = extract(text);
        assert!(d.diagnostic.contains("mailbox not found"), "{d:?}");
        assert_eq!(d.recipient.as_deref(), Some("bob@example.net"));
    }

    #[test]
    fn detects_the_stage() {
        assert_eq!(
            detect_stage("550 5.1.1 x (in reply to RCPT TO command)"),
            Stage::Rcpt
        );
        assert_eq!(
            detect_stage("SMTP error from remote mail server after MAIL FROM:<a@b>:"),
            Stage::MailFrom
        );
        assert_eq!(detect_stage("nothing here"), Stage::Unknown);
        assert_eq!(
            detect_stage("... while talking to mx.example.net.:\n>>> .\n<<< 554 5.7.1 rejected"),
            Stage::Data
        );
        assert_eq!(
            detect_stage("SMTP error from remote server after RCPT command:"),
            Stage::Rcpt
        );
        assert_eq!(
            detect_stage("198.51.100.20 failed after I sent the message."),
            Stage::Data
        );
    }
}
