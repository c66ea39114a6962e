# seconds: a bound for a hang only, never for speed. Under two busy loops beside the suite (load 10-12 on 2 cores)
# a 10 s subprocess took 100 s, so a tighter bound fails on a busy machine, not on a bug
HANG_S = 600
