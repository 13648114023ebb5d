//! Layout search speed: the yardstick is Llama 3.1 405B on 16,384 H100 (sequence 8192,
//! global batch 2048) in well under a second.

use suanli_catalog::Catalog;
use suanli_perf::search::{self, Constraints};
use suanli_perf::train::TrainSetup;

fn main() {
    divan::main();
}

fn setup(model: &str, count: u64, seq_len: u64, global_batch: u64) -> TrainSetup {
    let catalog = Catalog::builtin();
    let mut setup = TrainSetup::new(
        catalog.model(model).unwrap().clone(),
        catalog.accelerator("h100-sxm5-80gb").unwrap().clone(),
        count,
    );
    setup.seq_len = seq_len;
    setup.global_batch = global_batch;
    setup
}

#[divan::bench(sample_count = 20)]
fn llama_405b_on_16384_h100(bencher: divan::Bencher) {
    let setup = setup("llama-3.1-405b", 16384, 8192, 2048);
    bencher.bench(|| search::search(&setup, &Constraints::default(), 5).unwrap());
}

#[divan::bench(sample_count = 20)]
fn deepseek_v3_on_2048_h100(bencher: divan::Bencher) {
    let setup = setup("deepseek-v3", 2048, 4096, 4096);
    bencher.bench(|| search::search(&setup, &Constraints::default(), 5).unwrap());
}
