// A consumer of the installed chronicle library: appends one record to the queue named on
// the command line, reads the queue back from the start and prints each record as
// "<seq> <payload>". Exit status 0 only if the record written is the last one read.
#include <chronicle/reader.h>
#include <chronicle/writer.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: consumer QUEUE PAYLOAD\n";
        return 2;
    }
    const std::string payload = argv[2];
    uint64_t written = 0;
    {
        auto w = chronicle::Writer::open(argv[1]);
        if (!w) {
            std::cerr << "consumer: " << w.status().message() << "\n";
            return 1;
        }
        auto seq = w.value()->append(payload);
        if (!seq) {
            std::cerr << "consumer: " << seq.status().message() << "\n";
            return 1;
        }
        written = seq.value();
    }  // the writer is closed before reading: a reader needs none

    auto r = chronicle::Reader::open(argv[1]);
    if (!r) {
        std::cerr << "consumer: " << r.status().message() << "\n";
        return 1;
    }
    bool found = false;
    for (;;) {
        auto rec = r.value()->next();
        if (!rec) {
            std::cerr << "consumer: " << rec.status().message() << "\n";
            return 1;
        }
        if (!rec.value()) break;
        std::cout << rec.value()->seq << " " << rec.value()->text() << "\n";
        found = rec.value()->seq == written && rec.value()->text() == payload;
    }
    return found ? 0 : 1;
}
