// The small containers that stand in for std ones to keep compile time down.
#include <catch2/catch.hpp>

#include <duplex/detail/shared_set.hpp>

#include <memory>
#include <random>
#include <set>
#include <vector>

TEST_CASE("shared_set: insert, erase, contains against std::set", "[detail]") {
    duplex::detail::shared_set s;
    std::set<void*> model;
    std::vector<std::shared_ptr<int>> pool;
    for (int i = 0; i < 300; ++i) pool.push_back(std::make_shared<int>(i));
    std::mt19937 rng(7);
    for (int step = 0; step < 20000; ++step) {
        auto& p = pool[rng() % pool.size()];
        if (rng() % 2) {
            CHECK(s.insert(p) == model.insert(p.get()).second);
        } else {
            CHECK(s.erase(p.get()) == (model.erase(p.get()) == 1));
        }
        REQUIRE(s.size() == model.size());
    }
    std::size_t seen = 0;
    for (const auto& e : s) {
        if (!e) continue;
        ++seen;
        CHECK(model.count(e.get()) == 1);
    }
    CHECK(seen == model.size());
    for (auto& p : pool) CHECK(s.contains(p.get()) == (model.count(p.get()) == 1));
}

TEST_CASE("shared_set: holds a reference until erased", "[detail]") {
    duplex::detail::shared_set s;
    auto p = std::make_shared<int>(1);
    std::weak_ptr<int> w = p;
    CHECK(s.insert(p));
    CHECK_FALSE(s.insert(p));
    p.reset();
    CHECK_FALSE(w.expired());
    CHECK(s.erase(w.lock().get()));
    CHECK(w.expired());
    CHECK(s.size() == 0);
}

#include <duplex/connection/drain_waiters.hpp>

#include <string>

TEST_CASE("drain_waiters: wake, cancel, end, in order", "[detail]") {
    duplex::detail::drain_waiters d;
    std::string log;
    auto note = [&](char c) { return [&log, c](std::error_code ec) { log += c; log += ec ? '!' : '.'; }; };
    const auto a = d.wait(10, note('a'));
    const auto b = d.wait(0, note('b'));
    const auto c = d.wait(5, note('c'));
    CHECK(a != b);
    CHECK(d.any_waiting());
    auto run_ready = [&] {
        while (auto* n = d.pop_ready()) duplex::detail::drain_waiters::run(n);
    };
    CHECK_FALSE(d.wake(20));
    CHECK(d.wake(7)); // a only
    run_ready();
    CHECK(log == "a.");
    CHECK(d.cancel(c, std::make_error_code(std::errc::operation_canceled)));
    CHECK_FALSE(d.cancel(c, {}));
    d.complete(note('x'), {});
    run_ready();
    CHECK(log == "a.c!x.");
    const auto e = d.wait(3, note('e'));
    (void)e;
    d.end(std::make_error_code(std::errc::connection_reset)); // b, then e
    CHECK_FALSE(d.any_waiting());
    run_ready();
    CHECK(log == "a.c!x.b!e!");
    d.wait(1, note('z')); // freed unrun by the destructor
    d.complete(note('y'), {});
}
