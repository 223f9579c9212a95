from lagduel.cli import main

main()
