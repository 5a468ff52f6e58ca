// Golden snapshot sharing (golden_share.h): which services may share, and the
// hard-linked snapshot directories that make the sharing reference-counted.
#include "wispd/golden_share.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using wisp::test::ScopedTempDir;

void write_file(const std::string &path, const std::string &content) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

ServiceSpec spec_for(const std::string &image, uint32_t memory = 64, const std::string &cmd = "port=80") {
    ServiceSpec s;
    s.name = "svc";
    s.image = image;
    s.memory_mib = memory;
    s.cmdline = cmd;
    return s;
}

TEST(GoldenShare, SameImageContentMemoryAndCmdlineGiveTheSameKey) {
    ScopedTempDir dir("gold");
    write_file(dir.path() + "/a.elf", "image bytes");
    write_file(dir.path() + "/b.elf", "image bytes");  // a copy: same content
    GoldenShare g;
    auto a = g.key_of(spec_for(dir.path() + "/a.elf"));
    auto b = g.key_of(spec_for(dir.path() + "/b.elf"));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    EXPECT_NE(*a, *g.key_of(spec_for(dir.path() + "/a.elf", 128)));
    EXPECT_NE(*a, *g.key_of(spec_for(dir.path() + "/a.elf", 64, "port=81")));
    // A command line cannot pose as a memory size or vice versa.
    EXPECT_NE(*g.key_of(spec_for(dir.path() + "/a.elf", 64, "1M/x")),
              *g.key_of(spec_for(dir.path() + "/a.elf", 641, "M/x")));
}

TEST(GoldenShare, ARewrittenImageGetsANewKey) {
    ScopedTempDir dir("gold");
    std::string image = dir.path() + "/a.elf";
    write_file(image, "version 1");
    GoldenShare g;
    auto before = g.key_of(spec_for(image));
    ASSERT_TRUE(before.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    write_file(image, "version 2, longer");
    auto after = g.key_of(spec_for(image));
    ASSERT_TRUE(after.ok());
    EXPECT_NE(*before, *after);
}

TEST(GoldenShare, UnreadableImageHasNoKey) {
    GoldenShare g;
    auto k = g.key_of(spec_for("/nonexistent/image.elf"));
    ASSERT_FALSE(k.ok());
    EXPECT_EQ(k.error().code, ENOENT);
}

TEST(GoldenShare, DonorsComeAndGo) {
    GoldenShare g;
    EXPECT_FALSE(g.donor("k").has_value());
    g.add_donor("k", 7);
    g.add_donor("k", 9);
    g.add_donor("other", 3);
    ASSERT_TRUE(g.donor("k").has_value());
    g.remove(7);
    EXPECT_EQ(g.donor("k"), 9u);
    g.remove(9);
    EXPECT_FALSE(g.donor("k").has_value());
    EXPECT_EQ(g.donor("other"), 3u);
}

TEST(GoldenShare, LinkedSnapshotSharesTheInodesAndOutlivesTheOriginal) {
    ScopedTempDir dir("gold");
    std::string from = dir.path() + "/a/golden-1-r1", to = dir.path() + "/b/golden-2-r0";
    std::filesystem::create_directories(from);
    write_file(from + "/vmstate", "state");
    write_file(from + "/memory", "pages");
    ASSERT_TRUE(link_snapshot(from, to).ok());
    struct stat a {}, b {};
    ASSERT_EQ(stat((from + "/memory").c_str(), &a), 0);
    ASSERT_EQ(stat((to + "/memory").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(b.st_nlink, 2u);
    // No temporary directory is left next to it.
    size_t entries = 0;
    for (auto &e : std::filesystem::directory_iterator(dir.path() + "/b")) (void)e, ++entries;
    EXPECT_EQ(entries, 1u);
    // Deleting the first service's directory leaves the second one whole.
    std::filesystem::remove_all(dir.path() + "/a");
    std::ifstream in(to + "/memory");
    std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(content, "pages");
}

TEST(GoldenShare, LinkingFromAMissingSnapshotFailsAndLeavesNothing) {
    ScopedTempDir dir("gold");
    auto st = link_snapshot(dir.path() + "/missing", dir.path() + "/b/golden-2-r0");
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/b"));
}

}  // namespace
