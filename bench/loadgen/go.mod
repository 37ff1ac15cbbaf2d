module greenlang.local/bench/loadgen

go 1.24
