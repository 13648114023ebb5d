//! `suanli serve` options for the executors: the local machine and Slurm clusters.

use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

use suanli_server::slurm::{Mode, SlurmConfig};

/// Executors and Slurm clusters.
#[derive(Args)]
pub struct SlurmArgs {
    /// Executors, comma-separated: `local` (this machine), `slurm` (the Slurm cluster of the
    /// default slurm.conf, or of --slurm-conf).
    #[arg(long, default_value = "local", value_delimiter = ',')]
    executor: Vec<String>,
    /// More Slurm clusters as LABEL=SLURM_CONF (e.g. site-b=/etc/slurm-b/slurm.conf); repeatable.
    #[arg(long = "slurm-cluster")]
    clusters: Vec<String>,
    /// slurm.conf of the `slurm` executor's cluster (default: Slurm's own default or $SLURM_CONF).
    #[arg(long)]
    slurm_conf: Option<PathBuf>,
    /// Slurm partition to submit to (and whose nodes form the pools).
    #[arg(long)]
    slurm_partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long)]
    slurm_account: Option<String>,
    /// Slurm QOS to submit with (a priority hint in --slurm-mode slurm).
    #[arg(long)]
    slurm_qos: Option<String>,
    /// Who picks nodes: `suanli` (suanli's policy pins them) or `slurm`.
    #[arg(long, default_value = "suanli")]
    slurm_mode: String,
    /// Time limit of every Slurm run, minutes.
    #[arg(long, default_value_t = 24 * 60)]
    slurm_time_limit_min: u32,
    /// Slurm jobs kept submitted ahead of placement per allocation shape, released when suanli
    /// places a run (keeps `sbatch` off the start of a run); submitted as one job array once
    /// half are used; 0 submits each run at placement.
    #[arg(long, default_value_t = 32)]
    slurm_spares: usize,
}

impl SlurmArgs {
    /// The executors the options name; errors say what would be right.
    pub fn executors(&self) -> Result<suanli_server::Executors> {
        let mode: Mode = self.slurm_mode.parse()?;
        let cluster = |label: &str, conf: Option<PathBuf>| {
            let mut config = SlurmConfig::new(label);
            config.slurm_conf = conf.or_else(|| std::env::var_os("SLURM_CONF").map(PathBuf::from));
            config.partition = self.slurm_partition.clone();
            config.account = self.slurm_account.clone();
            config.qos = self.slurm_qos.clone();
            config.mode = mode;
            config.time_limit_min = self.slurm_time_limit_min;
            config.spares = self.slurm_spares;
            config
        };
        let mut executors = suanli_server::Executors {
            no_local: true,
            slurm: Vec::new(),
        };
        for name in &self.executor {
            match name.trim() {
                "local" => executors.no_local = false,
                "slurm" => executors
                    .slurm
                    .push(cluster("slurm", self.slurm_conf.clone())),
                other => bail!("--executor `{other}`: use local, slurm or both (local,slurm)"),
            }
        }
        for item in &self.clusters {
            let Some((label, conf)) = item.split_once('=') else {
                bail!(
                    "--slurm-cluster `{item}`: use LABEL=SLURM_CONF, e.g. site-b=/etc/slurm-b/slurm.conf"
                );
            };
            let valid = !label.is_empty()
                && label.len() <= 32
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid || label == "local" {
                bail!(
                    "--slurm-cluster label `{label}`: use up to 32 letters, digits or `-`, not `local`"
                );
            }
            executors
                .slurm
                .push(cluster(label, Some(PathBuf::from(conf))));
        }
        Ok(executors)
    }
}
