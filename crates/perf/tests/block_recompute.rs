//! Block recompute (`recompute_layers`): Megatron-LM's `--recompute-method block
//! --recompute-num-layers N` recomputes the whole forward of N layers per device and stores every
//! activation of the others. Checked on the layout of AMD's MLPerf Training v5.0 Llama 2 70B
//! LoRA submission on 8 MI300X (config_MI300X_1x8x1.sh: TP=1 PP=1 CP=1 MBS=1 FP8, ACG=full
//! ACM=block ACL=21).

use suanli_catalog::{Catalog, Precision};
use suanli_perf::lora::Workload;
use suanli_perf::train::{self, TrainSetup};
use suanli_perf::{Layout, LayoutSpec, Recompute};

fn mi300x_lora() -> TrainSetup {
    let catalog = Catalog::builtin();
    let mut setup = TrainSetup::new(
        catalog.model("llama-2-70b").unwrap().clone(),
        catalog.accelerator("mi300x").unwrap().clone(),
        8,
    );
    setup.precision = Precision::Fp8;
    setup.workload = Workload::Lora { rank: 16 };
    setup.seq_len = 8192;
    setup.global_batch = 8;
    setup
}

fn layout(text: &str) -> Layout {
    text.parse::<LayoutSpec>().unwrap().resolve(8).unwrap()
}

#[test]
fn a_block_of_21_of_80_layers_costs_21_80_of_full_recompute() {
    let setup = mi300x_lora();
    let none = train::estimate(&setup, &layout("tp=1,zero=0,mb=1,recompute=none")).unwrap();
    let full = train::estimate(&setup, &layout("tp=1,zero=0,mb=1,recompute=full")).unwrap();
    let block = train::estimate(
        &setup,
        &layout("tp=1,zero=0,mb=1,recompute=full,recompute_layers=21"),
    )
    .unwrap();
    let share = 21.0 / 80.0;
    assert_eq!(none.time.recompute_s, 0.0);
    let rel = |a: f64, b: f64| (a / b - 1.0).abs();
    assert!(
        rel(block.time.recompute_s, share * full.time.recompute_s) < 1e-9,
        "{} vs {} x {}",
        block.time.recompute_s,
        share,
        full.time.recompute_s
    );
    // Repeated FLOPs: the forward of 21 of the 80 layers (Narayanan et al. 2021, eq. 3, for
    // the recomputed layers only).
    let extra = |e: &train::TrainEstimate| e.hardware_flops_per_step - e.model_flops_per_step;
    assert!(rel(extra(&block), share * extra(&full)) < 1e-9);
    // Stored activations: 21 layers keep their input only, 59 keep everything.
    let acts = |e: &train::TrainEstimate| e.memory.activations_bytes;
    let expected = share * acts(&full) + (1.0 - share) * acts(&none);
    assert!(rel(acts(&block), expected) < 1e-9);
}

#[test]
fn the_submissions_block_fits_192_gb_where_storing_everything_does_not() {
    // AMD recomputed 21 layers on the 192 GB MI300X and none on the 256 GB MI325X (its
    // config_MI325X_1x8x1.sh sets no ACG): storing all 80 layers does not fit an MI300X.
    let setup = mi300x_lora();
    let memory = |text: &str| train::memory(&setup, &layout(text));
    let block = memory("tp=1,zero=0,mb=1,recompute=full,recompute_layers=21");
    let none = memory("tp=1,zero=0,mb=1,recompute=none");
    assert!(block.fits(), "{:.1} GB", block.total_bytes / 1e9);
    assert!(!none.fits(), "{:.1} GB", none.total_bytes / 1e9);
    let mut mi325x = setup.clone();
    mi325x.accelerator = Catalog::builtin().accelerator("mi325x").unwrap().clone();
    assert!(train::memory(&mi325x, &layout("tp=1,zero=0,mb=1,recompute=none")).fits());
}

#[test]
fn recompute_layers_is_written_read_and_checked() {
    let block = layout("tp=1,zero=0,mb=1,recompute=full,recompute_layers=21");
    assert_eq!(block.recompute, Recompute::Full);
    assert_eq!(block.recompute_layers, Some(21));
    let text = block.to_string();
    assert!(
        text.contains("recompute=full,recompute_layers=21"),
        "{text}"
    );
    assert_eq!(layout(&text), block);
    let model = mi300x_lora().model;
    assert!(block.check(&model, 8, 8192, 8).is_ok());
    let selective = layout("tp=1,zero=0,mb=1,recompute=selective,recompute_layers=21");
    assert!(selective.check(&model, 8, 8192, 8).is_err());
    let too_many = layout("tp=1,zero=0,mb=1,recompute=full,recompute_layers=81");
    assert!(too_many.check(&model, 8, 8192, 8).is_err());
}
