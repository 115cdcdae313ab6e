// Plain ES5 and XMLHttpRequest: the in-app browsers of WeCom and DingTalk are not always recent.
(function(){
  var btn=document.getElementById('go'), out=document.getElementById('result');
  if(!btn) return;
  function show(state,text){out.className=state;out.setAttribute('data-state',state);out.textContent=text}
  function nonce(){var s='';for(var i=0;i<4;i++){s+=Math.floor(Math.random()*4294967296).toString(16)}return s}
  function post(pos){
    var body={lat:pos.coords.latitude,lng:pos.coords.longitude,accuracy_m:pos.coords.accuracy,
      coord_system:'wgs84',device_at:new Date().toISOString(),nonce:nonce()};
    var x=new XMLHttpRequest();x.open('POST',location.pathname+location.search,true);
    x.setRequestHeader('Content-Type','application/json');
    x.onload=function(){
      var r={};try{r=JSON.parse(x.responseText)}catch(e){}
      if(x.status>=200&&x.status<300){show(r.verdict||'done',r.message||'已打卡');out.setAttribute('data-state','done');out.setAttribute('data-verdict',r.verdict||'')}
      else{show('error',r.message||('打卡失败（'+x.status+'）'));btn.disabled=false}
    };
    x.onerror=function(){show('error','网络错误，请稍后重试');btn.disabled=false};
    x.send(JSON.stringify(body));
  }
  btn.addEventListener('click',function(){
    if(!navigator.geolocation){show('error','此浏览器不能定位，请在聊天中发送位置打卡。');return}
    btn.disabled=true;show('locating','正在定位……');
    navigator.geolocation.getCurrentPosition(post,function(e){
      var why=e.code===1?'没有定位权限，请允许本页面使用位置信息，或在聊天中发送位置。':'定位失败：'+e.message;
      show('error',why);btn.disabled=false;
    },{enableHighAccuracy:true,timeout:20000,maximumAge:0});
  });
})();
