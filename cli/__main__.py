from replay_service.cli import main

main()
