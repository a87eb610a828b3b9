-- A returning visitor's message is written in one autocommit statement (widget.rs,
-- `visitor_message_at_once`): one round trip instead of BEGIN, two statements and COMMIT. That
-- statement carries its own preconditions (the visitor is still as this process last saw it,
-- the visitor may write to the conversation) and must write nothing when one fails. Without a
-- transaction around it, the only way to take back what its other parts wrote is to fail the
-- whole statement: it calls this, which raises SQLSTATE KS001, an error no other statement
-- raises, and the caller then takes the full path in a transaction. VOLATILE (the default),
-- so it is evaluated on each row, never folded at plan time.
CREATE FUNCTION kith_require(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'a precondition of the statement does not hold' USING ERRCODE = 'KS001';
  END IF;
  RETURN TRUE;
END
$$;
