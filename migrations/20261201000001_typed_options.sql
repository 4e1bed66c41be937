-- Job options become a typed contract (minutes_shared::options::JobOptions): only model,
-- summarizer, vocabulary and notify, each of its type. Earlier reprocessing also copied
-- title and language into the options (they live in their own columns): drop every other
-- key, and values of the wrong type, so that every stored row reads as the new type.
UPDATE jobs SET options = '{}'::jsonb WHERE jsonb_typeof(options) IS DISTINCT FROM 'object';
UPDATE jobs SET options = coalesce((
    SELECT jsonb_object_agg(key, value)
    FROM jsonb_each(options)
    WHERE (key = 'model' AND jsonb_typeof(value) = 'string')
       OR (key = 'vocabulary' AND jsonb_typeof(value) = 'string')
       OR (key = 'summarizer' AND value IN ('"extractive"'::jsonb, '"openai"'::jsonb))
       OR (key = 'notify' AND jsonb_typeof(value) = 'boolean')
), '{}'::jsonb);
