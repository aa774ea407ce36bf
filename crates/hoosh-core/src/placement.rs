//! Where a provider's model runs, and what follows from it: price, order on
//! ties, and whether a call the client walked away from still costs money.
//!
//! Three places, not a `local` flag: "in this process" and "on this
//! machine or network" route and price alike, but only the in-process
//! provider is built by the gateway itself (a reload keeps it); every
//! other provider comes from the config (a reload rebuilds it).

use serde::Deserialize;

/// Where a provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Inside the gateway: the built-in `local` provider (`[local]`).
    /// Reserved; a configured provider cannot say it.
    InProcess,
    /// A server on this machine or network (Ollama, vLLM, LM Studio,
    /// llama.cpp, LocalAI): no per-token bill.
    Nearby,
    /// A vendor's API, billed per token.
    Remote,
}

impl Placement {
    /// Priced at zero, whatever the price table says.
    pub fn is_free(self) -> bool {
        self != Placement::Remote
    }

    /// Sorts before remote providers of the same priority.
    pub fn wins_ties(self) -> bool {
        self != Placement::Remote
    }

    /// May bill for work the client no longer waits for: a call to it runs
    /// to its end even when the client hangs up.
    pub fn bills(self) -> bool {
        self == Placement::Remote
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::InProcess => "in_process",
            Placement::Nearby => "nearby",
            Placement::Remote => "remote",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_remote_costs_money_loses_ties_and_bills() {
        use Placement::*;
        assert_eq!([InProcess, Nearby, Remote].map(Placement::is_free), [true, true, false]);
        assert_eq!([InProcess, Nearby, Remote].map(Placement::wins_ties), [true, true, false]);
        assert_eq!([InProcess, Nearby, Remote].map(Placement::bills), [false, false, true]);
    }

    #[test]
    fn config_spellings_round_trip() {
        #[derive(Deserialize)]
        struct T {
            p: Placement,
        }
        for p in [Placement::InProcess, Placement::Nearby, Placement::Remote] {
            let t: T = toml::from_str(&format!("p = \"{}\"", p.as_str())).unwrap();
            assert_eq!(t.p, p);
        }
        assert!(toml::from_str::<T>("p = \"local\"").is_err());
        assert!(toml::from_str::<T>("p = \"InProcess\"").is_err());
    }
}
