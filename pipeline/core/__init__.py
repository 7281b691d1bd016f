"""The bottom layer: file reading and writing rules, processes, ranks and devices, keyed seeds, shared lists."""
