//! Collectives land on the links a system really has: a TPU slice's torus, an NVL72 rack's
//! NVLink domain, an HGX server's NVSwitch and the InfiniBand rails between servers.

use suanli_catalog::Catalog;
use suanli_perf::collective::{Collective, Fabric};
use suanli_perf::efficiency::Efficiency;

fn fabric(id: &str, count: u64) -> Fabric {
    let catalog = Catalog::builtin();
    let a = catalog.accelerator(id).unwrap();
    Fabric::new(
        a,
        a.default_per_node,
        a.scaleout_gb_per_s,
        &Efficiency::for_accelerator(a),
    )
    .for_job(count, 1.0)
}

#[test]
fn a_tpu_v5p_slice_all_reduces_over_the_torus_not_the_nics() {
    let slice = fabric("tpu-v5p", 512);
    let group = slice.group(512, 1);
    assert!(!group.crosses_scaleout(), "{group:?}");
    assert_eq!(
        group.torus_dims_used, 3,
        "512 chips = 8x8x8 span all three axes"
    );
    // Google's v5p figures: ICI 1200 GB/s per chip both ways (600 one way over 6 links);
    // DCN 50 Gb/s = 6.25 GB/s per chip. A ring all-reduce moves 2(n-1)/n of the buffer.
    let bytes = 1e9;
    let ici_bound_s = 2.0 * bytes / 600e9;
    let nic_bound_s = 2.0 * bytes / 6.25e9;
    let t = group.time_s(Collective::AllReduce, bytes);
    assert!(t > ici_bound_s, "{t} faster than the ICI line rate");
    assert!(t < 3.0 * ici_bound_s, "{t} s is not ICI speed");
    assert!(t < nic_bound_s / 20.0);
    // One axis of the torus (tp=8 along x) gets a third of the chip's links.
    let axis = slice.group(8, 1);
    assert_eq!(axis.torus_dims_used, 1);
    let t_axis = axis.time_s(Collective::AllReduce, bytes);
    // 3x the bandwidth term, less the smaller ring share (7/8 against 511/512).
    assert!(t_axis > 2.3 * t, "{t_axis} vs {t}: {axis:?} {group:?}");
}

#[test]
fn a_job_larger_than_the_largest_slice_joins_slices_over_the_dcn() {
    let pods = fabric("tpu-v5p", 16384);
    assert_eq!(pods.domain, 8960);
    assert!(pods.group(16384, 1).crosses_scaleout());
    let v5e = fabric("tpu-v5e", 4096);
    assert_eq!(v5e.domain, 256, "v5e slices stop at one 256-chip pod");
    assert_eq!(v5e.group(256, 1).torus_dims_used, 2);
}

#[test]
fn nvl72_keeps_64_gpus_on_nvlink_while_hgx_uses_infiniband() {
    let gb200 = fabric("gb200", 64);
    assert_eq!(gb200.domain, 72);
    assert!(!gb200.group(64, 1).crosses_scaleout());
    let h100 = fabric("h100-sxm5-80gb", 64);
    assert_eq!(h100.domain, 8);
    let group = h100.group(64, 1);
    assert!(group.crosses_scaleout());
    let bytes = 1e9;
    assert!(
        h100.group(64, 1).time_s(Collective::AllReduce, bytes)
            > 2.0 * gb200.group(64, 1).time_s(Collective::AllReduce, bytes)
    );
}

#[test]
fn oversubscription_slows_only_traffic_between_domains() {
    let catalog = Catalog::builtin();
    let a = catalog.accelerator("h100-sxm5-80gb").unwrap();
    let e = Efficiency::for_accelerator(a);
    let base = Fabric::new(a, 8, 50.0, &e).for_job(256, 1.0);
    let over = Fabric::new(a, 8, 50.0, &e).for_job(256, 2.0);
    let bytes = 1e9;
    let intra = |f: &Fabric| f.group(8, 1).time_s(Collective::AllReduce, bytes);
    let inter = |f: &Fabric| f.group(32, 8).time_s(Collective::AllReduce, bytes);
    assert_eq!(intra(&base), intra(&over));
    let ratio = inter(&over) / inter(&base);
    assert!(ratio > 1.9 && ratio < 2.01, "{ratio}");
}

#[test]
fn the_rank_order_decides_which_traffic_stays_inside_an_nvl72_rack() {
    use suanli_perf::LayoutSpec;
    use suanli_perf::train::{self, TrainSetup};
    let catalog = Catalog::builtin();
    let mut setup = TrainSetup::new(
        catalog.model("llama-3.1-70b").unwrap().clone(),
        catalog.accelerator("gb200").unwrap().clone(),
        576,
    );
    setup.seq_len = 8192;
    setup.global_batch = 576;
    let estimate = |text: &str| {
        let spec: LayoutSpec = text.parse().unwrap();
        let layout = spec.resolve(576).unwrap();
        assert_eq!(
            layout.to_string().contains("map=pp-inner"),
            text.contains("pp-inner")
        );
        train::estimate(&setup, &layout).unwrap()
    };
    // Megatron order: 8 stages 72 ranks apart, so every pipeline send leaves its rack.
    let megatron = estimate("tp=4,pp=8,mb=1,recompute=full");
    // Stages inside data replicas: a 32-GPU pipeline sits in one rack, data parallelism across.
    let inner = estimate("tp=4,pp=8,mb=1,recompute=full,map=pp-inner");
    assert!(inner.time.pp_p2p_s < megatron.time.pp_p2p_s / 2.0);
    assert!(inner.time.dp_comm_total_s > megatron.time.dp_comm_total_s);
}

#[test]
fn tpu_slices_have_power_of_two_sides_and_tensor_parallel_rides_one_axis() {
    use suanli_perf::collective::torus_sides;
    // cloud.google.com/tpu/docs: v5p-1024 is 8x8x8 chips, v5e-256 is 16x16, a 4096-chip v4
    // pod 16x16x16, a 256-chip v5p slice 4x8x8; PaLM's 3072-chip v4 pods are 12x16x16.
    assert_eq!(torus_sides(512, 3), vec![8, 8, 8]);
    assert_eq!(torus_sides(256, 2), vec![16, 16]);
    assert_eq!(torus_sides(4096, 3), vec![16, 16, 16]);
    assert_eq!(torus_sides(256, 3), vec![8, 8, 4]);
    assert_eq!(torus_sides(3072, 3).iter().product::<u32>(), 3072);
    // tp=8 on a 256-chip v5p slice lies along one 8-long axis, not across two.
    let slice = fabric("tpu-v5p", 512).with_slice_size(Some(256));
    assert_eq!(slice.domain, 256);
    assert_eq!(slice.group(8, 1).torus_dims_used, 1);
    assert_eq!(slice.group(32, 8).torus_dims_used, 2);
}

#[test]
fn a_two_slice_job_crosses_the_dcn_between_its_slices() {
    // MaxText 128B ran on 2 x v5p-512 (2 slices of 256 chips): one slice as large as the job
    // would keep the data-parallel axis on ICI.
    let whole = fabric("tpu-v5p", 512);
    assert!(!whole.group(64, 8).crosses_scaleout());
    let two = whole.with_slice_size(Some(256));
    let dp = two.group(64, 8);
    assert!(dp.crosses_scaleout());
    assert_eq!(dp.ranks_per_domain, 32);
    // A switched fabric ignores slices.
    let h100 = fabric("h100-sxm5-80gb", 64).with_slice_size(Some(8));
    assert_eq!(h100.domain, 8);
}

#[test]
fn a_pair_on_a_full_mesh_gets_one_link_group_while_a_switch_gives_it_all() {
    // MI300X platform: each OAM has 7 Infinity Fabric links of 128 GB/s (both ways) to its 7
    // peers, 64 GB/s one way per peer. A TP2 pair uses the one link between them; TP8 all 7.
    let mesh = fabric("mi300x", 8);
    let scale =
        Efficiency::for_accelerator(Catalog::builtin().accelerator("mi300x").unwrap()).scaleup;
    let pair = mesh.group(2, 1).scaleup_bytes_per_s;
    let eight = mesh.group(8, 1).scaleup_bytes_per_s;
    assert!((pair - 64e9 * scale).abs() < 1e6, "{pair}");
    assert!((eight - 448e9 * scale).abs() < 1e6, "{eight}");
    let four = mesh.group(4, 1).scaleup_bytes_per_s;
    assert!((four - 3.0 * 64e9 * scale).abs() < 1e6, "{four}");
    // Gaudi 3: 21 of 24 200GbE ports form the all-to-all, 3 per peer (75 GB/s one way).
    let gaudi = fabric("gaudi3", 8).group(2, 1).scaleup_bytes_per_s;
    let gaudi_scale =
        Efficiency::for_accelerator(Catalog::builtin().accelerator("gaudi3").unwrap()).scaleup;
    assert!((gaudi - 75e9 * gaudi_scale).abs() < 1e6, "{gaudi}");
    // An NVSwitch gives a pair of H100s the whole 450 GB/s one way, as it gives eight.
    let switch = fabric("h100-sxm5-80gb", 8);
    assert_eq!(
        switch.group(2, 1).scaleup_bytes_per_s,
        switch.group(8, 1).scaleup_bytes_per_s
    );
}
