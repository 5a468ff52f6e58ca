// wispd's options: defaults, the TOML file, command-line precedence, validation.
#include "wispd/options.h"

#include <gtest/gtest.h>

#include <fstream>

#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using wisp::test::ScopedTempDir;

CommandLine parse(std::vector<std::string> args) {
    args.insert(args.begin(), "wispd");
    std::vector<const char *> argv;
    for (auto &a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string write(const ScopedTempDir &dir, const std::string &text) {
    std::string path = dir.path() + "/wispd.toml";
    std::ofstream(path) << text;
    return path;
}

TEST(Options, DefaultsAreTheDocumentedPaths) {
    auto cl = parse({"--uplink", "eth0"});
    ASSERT_TRUE(cl.run) << cl.output;
    EXPECT_EQ(cl.options.state_dir, "/var/lib/wisp");
    EXPECT_EQ(cl.options.runtime_dir, "/run/wisp");
    EXPECT_EQ(cl.options.bpffs_root, "/sys/fs/bpf/wisp");
    EXPECT_EQ(cl.options.api_socket_path(), "/run/wisp/wispd.sock");
    EXPECT_EQ(cl.options.monitor_pool_size, 4u);
    EXPECT_EQ(cl.options.log_level, "info");
}

TEST(Options, SocketDefaultFollowsTheRuntimeDir) {
    auto cl = parse({"--runtime-dir", "/tmp/x"});
    ASSERT_TRUE(cl.run);
    EXPECT_EQ(cl.options.api_socket_path(), "/tmp/x/wispd.sock");
}

TEST(Options, ConfigFileSetsOptionsAndTheCommandLineWins) {
    ScopedTempDir dir("opts");
    auto path = write(dir, "uplink = \"eth1\"\nstate_dir = \"/srv/wisp\"\n"
                           "monitor_pool_size = 16\nlog_level = \"debug\"\n");
    auto cl = parse({"--config", path, "--log-level", "warn"});
    ASSERT_TRUE(cl.run) << cl.output;
    EXPECT_EQ(cl.options.uplink, "eth1");
    EXPECT_EQ(cl.options.state_dir, "/srv/wisp");
    EXPECT_EQ(cl.options.monitor_pool_size, 16u);
    EXPECT_EQ(cl.options.log_level, "warn");
    EXPECT_EQ(cl.options.config_file, path);
}

TEST(Options, UnknownConfigKeyIsAnErrorNamingIt) {
    ScopedTempDir dir("opts");
    auto path = write(dir, "uplnk = \"eth1\"\n");
    auto cl = parse({"--config", path});
    EXPECT_FALSE(cl.run);
    EXPECT_EQ(cl.exit_code, 2);
    EXPECT_NE(cl.output.find("unknown key 'uplnk'"), std::string::npos) << cl.output;
}

TEST(Options, WrongTypeInConfigIsAnErrorNamingTheKey) {
    ScopedTempDir dir("opts");
    auto path = write(dir, "monitor_pool_size = \"many\"\n");
    auto cl = parse({"--config", path});
    EXPECT_FALSE(cl.run);
    EXPECT_NE(cl.output.find("'monitor_pool_size' must be a non-negative integer"),
              std::string::npos)
        << cl.output;
}

TEST(Options, SyntaxErrorInConfigNamesTheLine) {
    ScopedTempDir dir("opts");
    auto path = write(dir, "uplink = \"eth1\"\nstate_dir = \n");
    auto cl = parse({"--config", path});
    EXPECT_FALSE(cl.run);
    EXPECT_NE(cl.output.find(path + ":2:"), std::string::npos) << cl.output;
}

TEST(Options, MissingConfigFileIsAnError) {
    auto cl = parse({"--config", "/nonexistent/wispd.toml"});
    EXPECT_FALSE(cl.run);
    EXPECT_EQ(cl.exit_code, 2);
    EXPECT_NE(cl.output.find("/nonexistent/wispd.toml"), std::string::npos);
}

TEST(Options, RelativePathsAreRefused) {
    auto cl = parse({"--state-dir", "var/lib/wisp"});
    EXPECT_FALSE(cl.run);
    EXPECT_NE(cl.output.find("state_dir: must be an absolute path"), std::string::npos)
        << cl.output;
}

TEST(Options, BadLogLevelAndPoolSizeAreRefused) {
    EXPECT_NE(parse({"--log-level", "loud"}).output.find("log_level:"), std::string::npos);
    EXPECT_NE(parse({"--monitor-pool-size", "5000"}).output.find("monitor_pool_size:"),
              std::string::npos);
}

TEST(Options, ServiceMapCapacityHoldsTenThousandByDefaultAndIsBounded) {
    EXPECT_GE(Options{}.max_services, 10'000u);
    auto cl = parse({"--max-services", "20000"});
    EXPECT_TRUE(cl.run) << cl.output;
    EXPECT_EQ(cl.options.max_services, 20'000u);
    EXPECT_NE(parse({"--max-services", "0"}).output.find("max_services:"), std::string::npos);
    EXPECT_NE(parse({"--max-services", "2000000"}).output.find("max_services:"), std::string::npos);
}

TEST(Options, MonitorBinaryDefaultsToWispVmmNextToTheDaemon) {
    Options o;
    auto path = monitor_binary_path(o);
    EXPECT_EQ(path.substr(path.size() - 9), "/wisp-vmm") << path;
    EXPECT_EQ(path[0], '/');
    o.monitor_binary = "/opt/wisp/wisp-vmm";
    EXPECT_EQ(monitor_binary_path(o), "/opt/wisp/wisp-vmm");
}

TEST(Options, UnknownFlagIsAUsageError) {
    auto cl = parse({"--frobnicate"});
    EXPECT_FALSE(cl.run);
    EXPECT_EQ(cl.exit_code, 2);
}

TEST(Options, HelpListsEveryOptionAndExitsZero) {
    auto cl = parse({"--help"});
    EXPECT_FALSE(cl.run);
    EXPECT_EQ(cl.exit_code, 0);
    for (const char *flag : {"--uplink", "--state-dir", "--runtime-dir", "--bpffs-root",
                             "--api-socket", "--monitor-pool-size", "--log-level", "--config"})
        EXPECT_NE(cl.output.find(flag), std::string::npos) << flag;
}

}  // namespace

#include "wisp/test/paths.h"

namespace {

TEST(Options, TheShippedExampleConfigIsValid) {
    auto opts = apply_config_file(wisp::test::source_dir() + "/scripts/systemd/wispd.toml",
                                  Options{});
    ASSERT_TRUE(opts.ok()) << opts.error().message;
    EXPECT_EQ(opts->uplink, "eth0");
    EXPECT_TRUE(validate_options(*opts).ok());
}

}  // namespace
