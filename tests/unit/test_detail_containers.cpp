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
