from bsbench.cli import main

main()
