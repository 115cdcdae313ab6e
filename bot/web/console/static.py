"""The console's stylesheet and script, served inline (no build step, no CDN)."""

CSS = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 -apple-system,'PingFang SC','Microsoft YaHei',sans-serif;background:#ededed;color:#222}
header{background:#2f6fed;color:#fff;padding:10px 14px;display:flex;gap:10px;align-items:center;position:sticky;top:0;z-index:2}
header a{color:#fff;text-decoration:none}header h1{font-size:17px;margin:0;flex:1}
main{max-width:560px;margin:0 auto;padding:10px}
.msg{margin:8px 0;display:flex}.msg.in{justify-content:flex-end}
.bubble{background:#fff;border-radius:8px;padding:8px 11px;max-width:88%;white-space:pre-wrap;box-shadow:0 1px 1px rgba(0,0,0,.06)}
.msg.in .bubble{background:#95ec69}
.card{background:#fff;border-radius:10px;width:100%;box-shadow:0 1px 2px rgba(0,0,0,.1);overflow:hidden}
.card .top{padding:10px 12px;border-bottom:1px solid #eee}.card .top b{font-size:16px}
.tag{display:inline-block;font-size:12px;border-radius:4px;padding:0 6px;margin-left:6px;background:#eef3ff;color:#2f6fed}
.tag.urgent{background:#ffecec;color:#d33}.tag.important{background:#fff4e0;color:#c77700}
.card dl{margin:0;padding:8px 12px;display:grid;grid-template-columns:auto 1fr;gap:3px 10px}.card dt{color:#888}.card dd{margin:0}
.card .meta{padding:0 12px 8px;color:#888;font-size:13px}
.card .buttons{display:flex;border-top:1px solid #eee}.card .buttons form{flex:1;margin:0}
.card .buttons button{width:100%;border:0;background:#fff;padding:11px;font-size:15px;cursor:pointer}
.card .buttons button.primary{color:#2f6fed;font-weight:600}.card .buttons button.danger{color:#d33}
.card .outcome{padding:10px 12px;color:#888;border-top:1px solid #eee;text-align:center}
.compose{position:sticky;bottom:0;background:#f7f7f7;padding:8px;display:flex;gap:6px;border-top:1px solid #ddd}
.compose input{flex:1;padding:9px;border:1px solid #ccc;border-radius:6px;font-size:15px}
button.send,a.btn,button.btn{background:#2f6fed;color:#fff;border:0;border-radius:6px;padding:9px 14px;font-size:15px;text-decoration:none;cursor:pointer;display:inline-block}
.users a,.templates a{display:block;background:#fff;padding:12px;margin:6px 0;border-radius:8px;color:#222;text-decoration:none}
.users small,.templates small{color:#888}
form.request label{display:block;margin:10px 0 3px;color:#555}
form.request input,form.request select,form.request textarea{width:100%;padding:8px;border:1px solid #ccc;border-radius:6px;font-size:15px;background:#fff}
form.request .checks label{display:inline-block;margin-right:12px;color:#222}form.request .checks input{width:auto}
.errors{background:#ffecec;color:#b00;padding:8px 12px;border-radius:8px}.err{color:#d33;font-size:13px}
table.trail{width:100%;border-collapse:collapse;background:#fff;font-size:13px}table.trail td{border-bottom:1px solid #eee;padding:5px}
.loc{display:flex;gap:6px;padding:0 8px 8px;background:#f7f7f7}.loc input{width:30%;padding:6px;border:1px solid #ccc;border-radius:6px}
"""

JS = """
(function(){
  var feed=document.getElementById('feed'); if(!feed) return;
  var url=feed.getAttribute('data-src'); var last=feed.innerHTML;
  function scroll(){window.scrollTo(0,document.body.scrollHeight)}
  scroll();
  setInterval(function(){
    fetch(url,{cache:'no-store'}).then(function(r){return r.text()}).then(function(h){
      if(h!==last){last=h;feed.innerHTML=h;scroll()}
    }).catch(function(){});
  },1500);
  var geo=document.getElementById('geo');
  if(geo&&navigator.geolocation){geo.addEventListener('click',function(ev){
    ev.preventDefault();
    navigator.geolocation.getCurrentPosition(function(p){
      var f=document.getElementById('locform');
      f.lat.value=p.coords.latitude;f.lng.value=p.coords.longitude;f.accuracy.value=p.coords.accuracy;f.coord_system.value='wgs84';f.submit();
    },function(e){alert('无法获取位置：'+e.message)},{enableHighAccuracy:true,timeout:10000});
  })}
})();
"""
