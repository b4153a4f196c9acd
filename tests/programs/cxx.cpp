// A C++ program: libstdc++'s iostreams and containers, and exceptions thrown and caught (the
// unwinder walks the stack through .eh_frame, in libgcc_s).
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

int main() {
    std::map<std::string, int> counts;
    for (const char *word : {"pith", "runs", "pith"}) counts[word]++;
    try {
        std::vector<int> values(3);
        values.at(5) = 1;
    } catch (const std::out_of_range &) {
        std::cout << "caught std::out_of_range\n";
    }
    try {
        throw std::runtime_error("thrown through a frame");
    } catch (const std::exception &error) {
        std::cout << "caught " << error.what() << "\n";
    }
    for (const auto &[word, count] : counts) std::cout << word << ": " << count << "\n";
    return 0;
}
