/* Baselines and drivers for tools/bench/dataplane.
 *
 *   wisp_bench_pass  passes every frame: what bpf_prog_test_run costs per frame before
 *                    any program logic runs.
 *   wisp_bench_flow  gives every run a new flow (a fresh source port and address from a
 *                    counter), then tail-calls wisp_bench_next[0]: wisp_ingress for the
 *                    measurement, wisp_bench_pass for its baseline. That way a large
 *                    repeat count measures new flows, not one flow found again. */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} wisp_bench_next SEC(".maps");

__u32 wisp_bench_seq;

SEC("xdp")
int wisp_bench_pass(struct xdp_md *ctx) {
    (void)ctx;
    return XDP_PASS;
}

/* Expects an untagged IPv4 frame without IP options. */
SEC("xdp")
int wisp_bench_flow(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    if (data + 38 > end) return XDP_ABORTED;
    __u32 seq = ++wisp_bench_seq;
    *(__u16 *)(data + 28) = (__u16)(seq >> 16); /* low half of the source address */
    *(__u16 *)(data + 34) = (__u16)seq;         /* source port */
    bpf_tail_call(ctx, &wisp_bench_next, 0);
    return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
