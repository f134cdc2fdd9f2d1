"""The `rtl` target: spx -> XLS IR -> pipelined Verilog; Verilator simulation, Yosys synthesis."""
