"""The Dockerfile front end: parse, expand variables, scope ARGs, plan stages, filter the context.

Pure code over text and values (the context walk in `dockerignore` is the one place that
reads a directory); it imports only the standard library and `dockling.errors`, so the
CLI can print a parse (`dockling build --print-ast`) without a daemon.

    parser.parse_dockerfile(text, filename) -> Dockerfile   the typed instructions by stage
    syntax.parse_nodes(text, filename)      -> NodeTree     the raw syntax tree (ast.render)
    expand.ShellLex(escape)                               $VAR, ${VAR:-x} ... as BuildKit
    args.BuildArgs                                        ARG scoping and --build-arg
    stages.plan_stages(dockerfile, target, meta_env)      the stages a target needs
    dockerignore.PatternMatcher                           .dockerignore rules
"""
