FROM busybox
COPY --chown="user name" --chmod='755' a b
COPY -- --not-a-flag dest
RUN --mount=type=secret,id=token,required cat /run/secrets/token
ADD --keep-git-dir=true --link=false https://example.com/repo.git /src
