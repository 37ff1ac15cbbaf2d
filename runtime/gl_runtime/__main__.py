from gl_runtime.cli import main

main()
