"""One module per `inkread` subcommand (or family of them).

Each module defines ``COMMANDS``: a list of ``(name, help, configure, run)``
where ``configure(parser)`` adds the options and ``run(args) -> int`` does
the work. Heavy imports (torch, PIL) happen inside ``run`` so that
``inkread --help`` stays fast.
"""
