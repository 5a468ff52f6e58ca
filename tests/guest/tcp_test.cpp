// TCP behaviour of a guest (lwIP as configured in guest/net/include/lwipopts.h),
// seen on the wire from the test namespace: hand-made segments on a raw socket,
// and the kernel's view of connection states through `ss`.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "guest_fixture.h"
#include "wisp/test/capabilities.h"

namespace wisp::test {
namespace {

uint16_t checksum(const uint8_t *data, size_t len, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
    if (len & 1) sum += static_cast<uint32_t>(data[len - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

struct Segment {
    uint16_t sport = 0, dport = 0;
    uint32_t seq = 0, ack = 0;
    uint8_t flags = 0;
    uint16_t window = 0;
    std::optional<uint16_t> mss;
    std::optional<uint8_t> wscale;
};

// A SYN the way Linux sends one: MSS, SACK permitted, window scale.
std::vector<uint8_t> make_syn(const char *src, const char *dst, uint16_t sport, uint16_t dport,
                              uint32_t seq) {
    std::vector<uint8_t> seg(20 + 12, 0);
    auto put16 = [&](size_t at, uint16_t v) {
        seg[at] = static_cast<uint8_t>(v >> 8);
        seg[at + 1] = static_cast<uint8_t>(v);
    };
    put16(0, sport);
    put16(2, dport);
    uint32_t nseq = htonl(seq);
    std::memcpy(&seg[4], &nseq, 4);
    seg[12] = static_cast<uint8_t>((seg.size() / 4) << 4);
    seg[13] = TH_SYN;
    put16(14, 64240);
    const uint8_t options[12] = {2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 0, 0};  // MSS 1460, SACK-OK, NOP, WS 7, EOL
    std::memcpy(&seg[20], options, sizeof options);
    uint8_t pseudo[12];
    inet_pton(AF_INET, src, pseudo);
    inet_pton(AF_INET, dst, pseudo + 4);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    pseudo[10] = 0;
    pseudo[11] = static_cast<uint8_t>(seg.size());
    uint32_t sum = 0;
    for (size_t i = 0; i < 12; i += 2) sum += static_cast<uint32_t>(pseudo[i] << 8 | pseudo[i + 1]);
    put16(16, checksum(seg.data(), seg.size(), sum));
    return seg;
}

std::optional<Segment> parse_segment(const uint8_t *pkt, size_t len) {
    if (len < 20) return std::nullopt;
    size_t ihl = (pkt[0] & 0xf) * 4u;
    if (len < ihl + 20) return std::nullopt;
    const uint8_t *t = pkt + ihl;
    Segment s;
    s.sport = static_cast<uint16_t>(t[0] << 8 | t[1]);
    s.dport = static_cast<uint16_t>(t[2] << 8 | t[3]);
    s.seq = ntohl(*reinterpret_cast<const uint32_t *>(t + 4));
    s.ack = ntohl(*reinterpret_cast<const uint32_t *>(t + 8));
    s.flags = t[13];
    s.window = static_cast<uint16_t>(t[14] << 8 | t[15]);
    size_t doff = (t[12] >> 4) * 4u;
    for (size_t i = 20; i < doff && ihl + i < len;) {
        uint8_t kind = t[i];
        if (kind == 0) break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= doff) break;
        uint8_t olen = t[i + 1];
        if (olen < 2) break;
        if (kind == 2 && olen == 4) s.mss = static_cast<uint16_t>(t[i + 2] << 8 | t[i + 3]);
        if (kind == 3 && olen == 3) s.wscale = t[i + 2];
        i += olen;
    }
    return s;
}

// Sends a SYN to the guest from a raw socket and returns the guest's answer.
std::optional<Segment> syn_and_answer(const RunningGuest &guest, uint16_t dport, uint16_t sport,
                                      uint32_t seq) {
    std::optional<Segment> answer;
    run_in_netns(guest.netns(), [&] {
        int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
        ASSERT_GE(fd, 0) << strerror(errno);
        auto syn = make_syn(RunningGuest::kGatewayIp, RunningGuest::kGuestIp, sport, dport, seq);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        inet_pton(AF_INET, RunningGuest::kGuestIp, &to.sin_addr);
        ASSERT_EQ(sendto(fd, syn.data(), syn.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof to),
                  static_cast<ssize_t>(syn.size()));
        for (int i = 0; i < 200 && !answer; i++) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            uint8_t buf[2048];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) continue;
            auto s = parse_segment(buf, static_cast<size_t>(n));
            if (s && s->sport == dport && s->dport == sport) answer = s;
        }
        close(fd);
    });
    return answer;
}

TEST(GuestTcp, SynAckCarriesMssAndWindowScaling) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto answer = syn_and_answer(guest, 80, 40001, 1000);
    ASSERT_TRUE(answer) << "no answer to the SYN";
    EXPECT_EQ(answer->flags & (TH_SYN | TH_ACK | TH_RST), TH_SYN | TH_ACK);
    EXPECT_EQ(answer->ack, 1001u);
    ASSERT_TRUE(answer->mss);
    EXPECT_EQ(*answer->mss, 1460) << "TCP_MSS";
    ASSERT_TRUE(answer->wscale) << "window scaling offered back";
    EXPECT_EQ(*answer->wscale, 2) << "TCP_RCV_SCALE";
}

TEST(GuestTcp, InitialSequenceNumbersAreNotACounter) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    std::vector<uint32_t> isns;
    for (uint16_t port = 40010; port < 40014; port++) {
        auto answer = syn_and_answer(guest, 80, port, 1);
        ASSERT_TRUE(answer) << "no answer to the SYN from port " << port;
        isns.push_back(answer->seq);
    }
    // RFC 6528 ISNs (clock + keyed hash of the 4-tuple) differ by random 32-bit
    // amounts; lwIP's built-in counter would advance by a few ticks at most.
    int far_apart = 0;
    for (size_t i = 1; i < isns.size(); i++)
        if (static_cast<uint32_t>(isns[i] - isns[i - 1] + (1u << 20)) > (2u << 20)) far_apart++;
    EXPECT_GE(far_apart, 2) << isns[0] << " " << isns[1] << " " << isns[2] << " " << isns[3];
}

TEST(GuestTcp, ClosedPortAnswersWithReset) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto answer = syn_and_answer(guest, 81, 40002, 5000);
    ASSERT_TRUE(answer) << "no answer to the SYN";
    EXPECT_EQ(answer->flags & (TH_RST | TH_ACK | TH_SYN), TH_RST | TH_ACK);
    EXPECT_EQ(answer->ack, 5001u);
}

// Connection states the namespace's kernel holds towards the guest, e.g.
// "TIME-WAIT 198.18.0.1:41234".
std::string client_states(const RunningGuest &guest) {
    auto r = guest.run_in_ns({"ss", "-tanH", "dst", std::string(RunningGuest::kGuestIp) + ":80"});
    return r.output;
}

uint16_t local_port(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len);
    return ntohs(sa.sin_port);
}

// Waits (up to 5 s) until the client socket on `port` is (or is no longer) in
// `state` ("" matches any state).
bool wait_for_state(const RunningGuest &guest, uint16_t port, const std::string &state, bool present) {
    std::string needle = ":" + std::to_string(port) + " ";
    for (int i = 0; i < 100; i++) {
        std::istringstream lines(client_states(guest));
        std::string line;
        bool found = false;
        while (std::getline(lines, line))
            if (line.find(needle) != std::string::npos && line.rfind(state, 0) == 0) found = true;
        if (found == present) return true;
        usleep(50 * 1000);
    }
    return false;
}

// Connects from the namespace, runs `exchange`, closes; returns the client's port.
uint16_t with_connection(const RunningGuest &guest, const std::function<void(TcpClient &)> &exchange) {
    uint16_t port = 0;
    run_in_netns(guest.netns(), [&] {
        TcpClient client(RunningGuest::kGuestIp, 80);
        ASSERT_TRUE(client.connected());
        port = local_port(client.fd());
        exchange(client);
    });
    return port;
}

TEST(GuestTcp, ServerCloseCompletesTheFinHandshake) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    uint16_t port = with_connection(guest, [](TcpClient &client) {
        client.send_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        bool closed = false;
        std::string response = client.read_until_close(10000, &closed);
        EXPECT_TRUE(closed) << "the guest's FIN";
        EXPECT_NE(response.find("hello from wisp"), std::string::npos);
        // Closing the client afterwards sends our FIN, which the guest must ACK.
    });
    // The guest ACKed our FIN: nothing left in LAST-ACK (the server sent its FIN
    // first, so the client side does not linger in TIME-WAIT).
    EXPECT_TRUE(wait_for_state(guest, port, "LAST-ACK", false)) << client_states(guest);
    EXPECT_TRUE(wait_for_state(guest, port, "", false)) << client_states(guest);
}

TEST(GuestTcp, ClientCloseCompletesTheFinHandshake) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    uint16_t port = with_connection(guest, [](TcpClient &client) {
        client.send_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        std::string response = client.read_some(1, 10000);
        ASSERT_FALSE(response.empty());
        client.shutdown_write();
        bool closed = false;
        client.read_until_close(10000, &closed);
        EXPECT_TRUE(closed) << "the guest answers our FIN with its own";
    });
    // Our FIN was ACKed and theirs arrived: the client socket sits in TIME-WAIT.
    EXPECT_TRUE(wait_for_state(guest, port, "TIME-WAIT", true)) << client_states(guest);
    auto stats = curl(guest, "/_wisp/stats");
    EXPECT_NE(stats.body.find("\"closed_by_peer\":1"), std::string::npos) << stats.body;
    EXPECT_NE(stats.body.find("\"open\":1,"), std::string::npos) << "only the stats request is open";
}

}  // namespace
}  // namespace wisp::test
