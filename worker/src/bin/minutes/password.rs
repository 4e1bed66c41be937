//! Reading a password for `minutes users` and `minutes tokens`: from a prompt that does not
//! echo when standard input is a terminal, else from its first line (scripts). Never from
//! a flag, so passwords stay out of shell history and process lists.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{bail, Context as _};

/// A password; with `confirm` a terminal asks twice and the two must match.
pub fn read(prompt: &str, confirm: bool) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password(prompt).context("cannot read the password")?;
    if confirm {
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
    }
    Ok(first)
}
