// Test-only packet loss (netem is not available here): a TC program attached
// to both directions of a guest's tap that drops a fraction of IPv4 TCP frames.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Frames dropped per 1000 TCP frames; set through the skeleton's rodata.
const volatile __u32 drop_per_mille = 50;

// [0] TCP frames passed, [1] TCP frames dropped. Written here, read by the test.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} wisp_loss_count SEC(".maps");

SEC("tc")
int wisp_loss(struct __sk_buff *skb) {
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP) return TC_ACT_OK;
    __u32 key = bpf_get_prandom_u32() % 1000 < drop_per_mille ? 1 : 0;
    __u64 *count = bpf_map_lookup_elem(&wisp_loss_count, &key);
    if (count) __sync_fetch_and_add(count, 1);
    return key ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
