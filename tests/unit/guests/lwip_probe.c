/* Toolchain proof: lwIP's static library links into a guest image. The image
 * brings up an ethernet netif and a listening TCP pcb, so the whole receive path
 * (ethernet -> IPv4/IPv6 -> TCP) is linked; guest_image_test checks it is inside. */
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/tcp.h"
#include "netif/ethernet.h"
#include "wisp/guest.h"

static err_t probe_linkoutput(struct netif *netif, struct pbuf *p) {
    (void)netif;
    (void)p;
    return ERR_OK;
}

static err_t probe_netif_init(struct netif *netif) {
    netif->mtu = 1500;
    netif->hwaddr_len = 6;
    memcpy(netif->hwaddr, wisp_boot_info()->mac, 6);
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    netif->output = etharp_output;
    netif->linkoutput = probe_linkoutput;
    return ERR_OK;
}

int main(void) {
    static struct netif netif;
    lwip_init();
    ip4_addr_t ip, mask, gw;
    IP4_ADDR(&ip, 198, 18, 0, 2);
    IP4_ADDR(&mask, 255, 255, 255, 0);
    IP4_ADDR(&gw, 198, 18, 0, 1);
    if (!netif_add(&netif, &ip, &mask, &gw, NULL, probe_netif_init, ethernet_input)) return 3;
    netif_set_up(&netif);
    struct tcp_pcb *pcb = tcp_new();
    if (!pcb || tcp_bind(pcb, IP_ANY_TYPE, 80) != ERR_OK) return 1;
    return tcp_listen(pcb) ? 0 : 2;
}
