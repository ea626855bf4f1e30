"""`bsbench reproduce bucketserve|uellm`: a paper's experiments on its setup, each claim beside the measured figure.

    params.py                 every unknown of a paper's setup as a named Param (value and reason)
    claims.py                 what each paper claims, as data
    verdict.py                holds / does not hold / not comparable, and what "holds" means
    engine_runs.py            the runs: sweeps (experiments.sweep) and capacity searches (experiments.capacity)
    experiments_bucketserve.py, experiments_uellm.py   each paper's experiments and measured figures
    report.py                 the verdict table, OUT/reproduce_summary.json and OUT/report.html
"""
