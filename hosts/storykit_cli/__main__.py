from storykit_cli.main import main

main()
