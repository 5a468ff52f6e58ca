/* Toolchain proof: a minimal XDP program built through wisp_bpf_object().
 * Passes IPv4 frames, drops everything else, and counts what it saw — enough to
 * show that UAPI headers, libbpf helpers, maps, BTF and the skeleton all work. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Frames seen, by verdict (0 = dropped, 1 = passed). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} wisp_probe_cnt SEC(".maps");

SEC("xdp")
int wisp_probe(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u32 verdict = 0;
    if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) verdict = 1;
    __u64 *count = bpf_map_lookup_elem(&wisp_probe_cnt, &verdict);
    if (count) __sync_fetch_and_add(count, 1);
    return verdict ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
