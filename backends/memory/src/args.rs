//! The memory backend's command-line flags (`--memory.*`, feature `cli`).

use std::num::NonZeroUsize;

use crate::config::MemoryConfig;

/// Flags of the memory backend. Every flag also reads `JAEGER_REMOTE_STORAGE_MEMORY_<NAME>`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Memory backend (--backend memory)")]
pub struct MemoryArgs {
    /// Traces kept per tenant; the oldest is evicted beyond this.
    #[arg(
        long = "memory.max-traces",
        env = "JAEGER_REMOTE_STORAGE_MEMORY_MAX_TRACES",
        default_value_t = MemoryConfig::DEFAULT_MAX_TRACES
    )]
    pub max_traces: NonZeroUsize,
}

impl From<&MemoryArgs> for MemoryConfig {
    fn from(args: &MemoryArgs) -> Self {
        Self {
            max_traces: args.max_traces,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        memory: MemoryArgs,
    }

    #[test]
    fn defaults_are_the_config_defaults() {
        let command = Command::try_parse_from(["test"]).unwrap();
        assert_eq!(MemoryConfig::from(&command.memory), MemoryConfig::default());
        let command = Command::try_parse_from(["test", "--memory.max-traces=7"]).unwrap();
        assert_eq!(MemoryConfig::from(&command.memory).max_traces.get(), 7);
        assert!(Command::try_parse_from(["test", "--memory.max-traces=0"]).is_err());
    }
}
