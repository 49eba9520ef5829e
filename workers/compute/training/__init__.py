"""Training finite networks: the optimizers (`optimizers`, one registry that knows each method's
update, `auto` choice and predicted rate), the rates linear theory predicts from a spectrum
(`theory`), the stacked-replicate loop (`stacked`), the engine that records a run (`engine`),
and the `train` experiment (`experiment`)."""
