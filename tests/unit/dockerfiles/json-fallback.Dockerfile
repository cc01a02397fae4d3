FROM busybox
CMD [ "echo", "spaced json" ]
CMD ["unterminated
CMD ['single', 'quotes']
CMD []
ENTRYPOINT []
RUN [ "echo" ] trailing
CMD
ENTRYPOINT ["a\tb", "\u00e9", "quote\"d", "back\\slash"]
COPY [ "a", "b" ]
COPY "quoted name" dest
