from platform_ctl.cli import main

main()
